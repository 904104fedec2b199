"""`fedgate serve`: runs the gateway in the foreground."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer
from pydantic import ValidationError

from gateway.cli.output import errors, fail
from gateway.identity.credentials import INSECURE_ENV
from gateway.identity.errors import IdentityError
from gateway.services.tls import INSECURE_WARNING
from gateway.settings import Settings


def serve_command(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML config file (README, Configuration).", exists=True
    ),
    listen: str | None = typer.Option(None, help="host:port to listen on; port 0 picks one."),
    state_dir: Path | None = typer.Option(None, help="Folder for the SQLite database."),
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL; default SQLite in the state folder."
    ),
    certs: Path | None = typer.Option(
        None,
        "--certs",
        help="Certificates folder with ca.pem, gateway.pem, gateway-key.pem "
        "(default <state-dir>/certs).",
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure",
        envvar=INSECURE_ENV,
        help="Plaintext gRPC, identities only asserted: local experiments only, never in "
        "production.",
    ),
    ready_file: Path | None = typer.Option(
        None, help="Write the bound host:port to this file once serving (for scripts)."
    ),
    log_level: str = typer.Option("INFO", help="Log level: DEBUG, INFO, WARNING, ERROR."),
) -> None:
    """Run the federation gateway until SIGINT or SIGTERM.

    mTLS by default: create the certificates first with
    `fedgate certs init && fedgate certs issue --gateway --domain cli`.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides = {
        k: v
        for k, v in {"listen": listen, "state_dir": state_dir, "database_url": database_url}.items()
        if v is not None
    }
    tls: dict[str, object] = {}
    if certs is not None:
        tls["certs_dir"] = certs
    if insecure:
        tls["insecure"] = True
    try:
        settings = Settings.load(config, **overrides)
        if tls:
            settings.tls = settings.tls.model_copy(update=tls)
    except ValidationError as exc:
        fail(f"invalid configuration: {exc}")
    if settings.tls.insecure:
        errors.print(f"[bold red]WARNING:[/] {INSECURE_WARNING}", highlight=False, soft_wrap=True)
    from gateway.server import serve

    try:
        asyncio.run(serve(settings, ready_file=ready_file))
    except IdentityError as exc:
        fail(exc.message)
