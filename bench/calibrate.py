"""A yardstick for the machine: an in-process grpc.aio unary round trip of 200 bytes.

Absolute figures move a lot between machines and with outside load; this one says
how fast Python gRPC is here and now, so runs can be compared with each other.
"""

from __future__ import annotations

import os
import time
from typing import Any

import grpc

from bench.stats import percentile

_SERVICE = "bench.Calibrate"


async def _echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return request


async def calibrate(calls: int = 1000, warmup: int = 200) -> dict[str, float]:
    """p50 latency and CPU per call (client and server together) of a trivial round trip."""
    server = grpc.aio.server()
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_SERVICE, {"Echo": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                f"/{_SERVICE}/Echo"
            )
            payload = b"x" * 200
            for _ in range(warmup):
                await call(payload)
            latencies: list[float] = []
            before = os.times()
            for _ in range(calls):
                started = time.perf_counter_ns()
                await call(payload)
                latencies.append((time.perf_counter_ns() - started) / 1000)
            after = os.times()
    finally:
        await server.stop(0)
    cpu = (after.user + after.system) - (before.user + before.system)
    return {
        "unary_p50_us": percentile(latencies, 50),
        "unary_cpu_us_per_call": cpu / calls * 1e6,
        "calls": calls,
    }
