"""Command line shared by the example domains: `python -m domains.<name> --gateway HOST:PORT`.

mTLS by default: the domain presents `<certs>/<name>.pem` (with its key and
`<certs>/ca.pem`) to the gateway and to its own callers; `--certs` or
`$FEDGATE_CERTS` name the folder, `.fedgate/certs` otherwise. `--insecure`
(plaintext, identity asserted in metadata) is for local experiments only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from domains.sdk import Domain, run_domain
from gateway.identity.credentials import (
    CERTS_ENV,
    INSECURE_ENV,
    Credentials,
    default_certs_dir,
    insecure_requested,
)
from gateway.identity.errors import IdentityError
from gateway.services.tls import INSECURE_WARNING


def main(domain: Domain, argv: list[str] | None = None) -> None:
    """Parses the standard domain flags and serves `domain` until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog=f"python -m domains.{domain.name}",
        description=f"Run the {domain.name} domain's orchestrator and register it.",
    )
    parser.add_argument("--gateway", default="127.0.0.1:7443", help="gateway host:port")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to serve on")
    parser.add_argument("--lease-ttl", type=float, default=None, help="requested lease seconds")
    parser.add_argument(
        "--certs",
        type=Path,
        default=default_certs_dir(),
        help=f"certificates folder with ca.pem and {domain.name}.pem "
        f"(default ${CERTS_ENV}, else .fedgate/certs)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=insecure_requested(),
        help=f"plaintext, no certificates: local experiments only, never in production "
        f"(also ${INSECURE_ENV}=1)",
    )
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        help="append one line per task run to this file (proves nothing ran twice)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    credentials = None
    if args.insecure:
        sys.stderr.write(f"WARNING: {INSECURE_WARNING}\n")
    else:
        try:
            credentials = Credentials.load(args.certs, domain.name)
        except IdentityError as exc:
            sys.exit(f"error: {exc.message}")
    asyncio.run(
        run_domain(
            domain,
            gateway=args.gateway,
            listen=args.listen,
            lease_ttl=args.lease_ttl,
            credentials=credentials,
            insecure=args.insecure,
            journal=args.journal,
        )
    )
