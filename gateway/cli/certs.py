"""`fedgate certs init|issue|list`: a development CA and the federation's certificates.

    fedgate certs init [--dir DIR] [--trust-domain fedgate.local]
    fedgate certs issue --gateway [--domain NAME ...] [--dir DIR]
    fedgate certs list [--dir DIR]

DIR defaults to `$FEDGATE_CERTS`, else `.fedgate/certs`; the layout is described
in `gateway.identity.dev_ca`. Private keys are written 0600 and never printed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from cryptography import x509

from gateway.cli.output import console, fail, print_table
from gateway.identity import dev_ca
from gateway.identity.credentials import (
    CA_FILE,
    CA_KEY_FILE,
    CERTS_ENV,
    DEFAULT_CERTS_DIR,
    spiffe_id_of,
)
from gateway.identity.errors import IdentityError
from gateway.identity.spiffe import DEFAULT_TRUST_DOMAIN

certs_app = typer.Typer(
    help="Development CA and certificates for mTLS (gateway, domains, the CLI).",
    no_args_is_help=True,
)

DIR_OPTION = typer.Option(
    DEFAULT_CERTS_DIR, "--dir", "-d", envvar=CERTS_ENV, help="Certificates folder."
)


@certs_app.command("init")
def init_command(
    directory: Path = DIR_OPTION,
    trust_domain: str = typer.Option(
        DEFAULT_TRUST_DOMAIN, help="Trust domain: identities are spiffe://<trust-domain>/..."
    ),
    days: int = typer.Option(dev_ca.CA_DAYS, min=1, help="Validity of the CA in days."),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing CA (its certificates stop being trusted)."
    ),
) -> None:
    """Create a development CA (DIR/ca.pem, DIR/ca-key.pem)."""
    try:
        issued = dev_ca.init_ca(directory, trust_domain, days=days, force=force)
    except IdentityError as exc:
        fail(exc.message)
    console.print(
        f"created CA for [bold]{issued.identity}[/] in {directory}/ "
        f"({CA_FILE}; key {CA_KEY_FILE}, mode 0600), valid until {issued.not_after:%Y-%m-%d}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"next: fedgate certs issue --gateway --domain cli --domain <name> --dir {directory}",
        highlight=False,
        soft_wrap=True,
    )


@certs_app.command("issue")
def issue_command(
    domains: list[str] = typer.Option(
        [], "--domain", help="Issue a certificate for this domain (repeatable); 'cli' for the CLI."
    ),
    gateway: bool = typer.Option(False, "--gateway", help="Issue the gateway's certificate."),
    directory: Path = DIR_OPTION,
    days: int = typer.Option(dev_ca.LEAF_DAYS, min=1, help="Validity in days."),
    dns: list[str] = typer.Option(
        [], "--dns", help="Extra DNS name to include (repeatable), e.g. the gateway's host."
    ),
    ip: list[str] = typer.Option([], "--ip", help="Extra IP address to include (repeatable)."),
) -> None:
    """Issue certificates from the CA in DIR: DIR/<name>.pem and DIR/<name>-key.pem."""
    if not gateway and not domains:
        fail("say what to issue: --gateway and/or --domain NAME", 2)
    names, ips = tuple(dns), tuple(ip)
    try:
        issued = (
            [dev_ca.issue_gateway(directory, days=days, dns_names=names, ip_addresses=ips)]
            if gateway
            else []
        )
        for name in domains:
            issued.append(
                dev_ca.issue_domain(directory, name, days=days, dns_names=names, ip_addresses=ips)
            )
    except IdentityError as exc:
        fail(exc.message)
    for item in issued:
        console.print(
            f"issued [bold]{item.identity}[/] -> {item.cert} (key {item.key.name}, mode 0600), "
            f"valid until {item.not_after:%Y-%m-%d}",
            highlight=False,
            soft_wrap=True,
        )


@certs_app.command("list")
def list_command(directory: Path = DIR_OPTION) -> None:
    """List the certificates in DIR: identity, validity, key present."""
    if not directory.is_dir():
        fail(
            f"no certificates folder {directory}: "
            f"create it with fedgate certs init --dir {directory}"
        )
    rows = []
    for path in sorted(directory.glob("*.pem")):
        if path.name.endswith("-key.pem"):
            continue
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            identity = str(spiffe_id_of(cert, path))
        except (ValueError, IdentityError) as exc:
            rows.append((path.name, f"unreadable: {exc}", "", ""))
            continue
        key = path.with_name(CA_KEY_FILE if path.name == CA_FILE else f"{path.stem}-key.pem")
        rows.append(
            (
                path.name,
                identity,
                f"{cert.not_valid_after_utc:%Y-%m-%d}",
                "yes" if key.exists() else "no",
            )
        )
    print_table(f"certificates in {directory}", ["file", "identity", "valid until", "key"], rows)
