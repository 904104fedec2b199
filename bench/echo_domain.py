"""The benchmark's echo domain: `echo/echo` returns its input unchanged.

Run it as its own process; it registers with the gateway and writes its address to
the ready file once registered, so the bench never sleeps a fixed time:

    python -m bench.echo_domain --gateway 127.0.0.1:7443 --ready-file /tmp/echo.addr
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bench.ready import write_atomically
from domains.sdk import Domain, DomainServer, TaskContext

domain = Domain(name="echo", owner="bench@example.com")

REGISTRATION_TIMEOUT = 30.0
"""Seconds to wait for the gateway to grant a lease before giving up."""


class EchoMessage(BaseModel):
    """What the echo capability takes and gives back."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=4096)
    numbers: list[int] = Field(default_factory=list, max_length=1024)
    attributes: dict[str, str] = Field(default_factory=dict)


@domain.capability(
    "echo",
    version="1.0.0",
    description="Returns its input unchanged (benchmark baseline).",
    idempotent=True,
    timeout=30.0,
)
async def echo(ctx: TaskContext, request: EchoMessage) -> EchoMessage:
    """Returns the request as the result."""
    return request


async def serve(gateway: str | None, listen: str, ready_file: Path | None) -> None:
    """Serves the echo domain until SIGINT/SIGTERM; registers first when `gateway` is set."""
    server = DomainServer(domain, listen=listen, gateway=gateway)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        if server.lease_keeper is not None:
            async with asyncio.timeout(REGISTRATION_TIMEOUT):
                await server.lease_keeper.wait_registered()
        if ready_file is not None:
            write_atomically(ready_file, server.address)
        await stopping.wait()
    finally:
        await server.stop(grace=1.0)


def main(argv: list[str] | None = None) -> None:
    """Command line of the echo domain."""
    parser = argparse.ArgumentParser(prog="python -m bench.echo_domain", description=__doc__)
    parser.add_argument("--gateway", default=None, help="gateway host:port to register with")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to serve on")
    parser.add_argument("--ready-file", type=Path, default=None, help="write the address here")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args.gateway, args.listen, args.ready_file))


if __name__ == "__main__":
    main()
