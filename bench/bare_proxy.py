"""A bare grpc.aio pass-through proxy for `DomainOrchestrator.Execute`: one Python hop.

It forwards raw bytes both ways over ONE reused channel: no deserialization, no
routing decision, no bookkeeping, only the metadata and the remaining deadline. It is
the physical limit of what a Python gRPC hop costs, the yardstick for the gateway.

    python -m bench.bare_proxy --target 127.0.0.1:50051 --ready-file /tmp/proxy.addr
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bench.ready import write_atomically

SERVICE = "federation.v1.DomainOrchestrator"
METHOD = f"/{SERVICE}/Execute"

# Hop-by-hop or transport-owned keys that must not be copied onto the upstream call.
_DROPPED_PREFIXES = (":", "grpc-")
_DROPPED_KEYS = frozenset({"user-agent", "content-type", "te", "host"})


class BareProxy:
    """Forwards Execute calls as bytes to one upstream over one long-lived channel."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        # No (de)serializers: requests and responses stay bytes end to end.
        self._execute: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = self._channel.unary_stream(
            METHOD
        )

    async def forward(
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        """Streams the upstream's response messages back unchanged."""
        carried = tuple(
            (key, value)
            for key, value in context.invocation_metadata() or ()
            if key not in _DROPPED_KEYS and not key.startswith(_DROPPED_PREFIXES)
        )
        call = self._execute(request, timeout=context.time_remaining(), metadata=carried)
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "")
        finally:
            if not call.done():
                call.cancel()

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler that serves Execute with identity (bytes) serializers."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Execute": grpc.unary_stream_rpc_method_handler(
                    self.forward, request_deserializer=None, response_serializer=None
                )
            },
        )

    async def close(self) -> None:
        """Closes the upstream channel."""
        await self._channel.close()


async def serve(target: str, listen: str, ready_file: Path | None) -> None:
    """Serves the proxy until SIGINT/SIGTERM."""
    proxy = BareProxy(target)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((proxy.handler(),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(listen)
    if not port:
        raise OSError(f"could not bind {listen}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        if ready_file is not None:
            write_atomically(ready_file, f"{listen.rpartition(':')[0]}:{port}")
        await stopping.wait()
    finally:
        await server.stop(1.0)
        await proxy.close()


def main(argv: list[str] | None = None) -> None:
    """Command line of the proxy."""
    parser = argparse.ArgumentParser(prog="python -m bench.bare_proxy", description=__doc__)
    parser.add_argument("--target", required=True, help="upstream orchestrator host:port")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to serve on")
    parser.add_argument("--ready-file", type=Path, default=None, help="write the address here")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    asyncio.run(serve(args.target, args.listen, args.ready_file))


if __name__ == "__main__":
    main()
