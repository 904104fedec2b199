"""Command line shared by the example domains: `python -m domains.<name> --gateway HOST:PORT`."""

from __future__ import annotations

import argparse
import asyncio
import logging

from domains.sdk import Domain, run_domain


def main(domain: Domain, argv: list[str] | None = None) -> None:
    """Parses the standard domain flags and serves `domain` until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog=f"python -m domains.{domain.name}",
        description=f"Run the {domain.name} domain's orchestrator and register it.",
    )
    parser.add_argument("--gateway", default="127.0.0.1:7443", help="gateway host:port")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to serve on")
    parser.add_argument("--lease-ttl", type=float, default=None, help="requested lease seconds")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(
        run_domain(domain, gateway=args.gateway, listen=args.listen, lease_ttl=args.lease_ttl)
    )
