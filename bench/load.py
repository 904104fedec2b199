"""The load generator: N calls one at a time (latency) or with C in flight (throughput)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.targets import Target


@dataclass(frozen=True)
class Run:
    """What one batch of calls measured."""

    calls: int
    concurrency: int
    """Calls in flight that were asked for (fewer if there were fewer calls)."""
    elapsed_s: float
    latencies_us: list[float]

    @property
    def throughput(self) -> float:
        """Completed calls per second of wall time."""
        return self.calls / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def run(target: Target, calls: int, concurrency: int) -> Run:
    """Makes `calls` calls with `concurrency` of them in flight at any time."""
    latencies: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        clock = time.perf_counter_ns
        call = target.call
        while remaining > 0:
            remaining -= 1
            started = clock()
            await call()
            latencies.append((clock() - started) / 1000)

    workers = min(concurrency, calls)
    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
    except ExceptionGroup as errors:
        raise errors.exceptions[0] from None  # the first failure says what went wrong
    return Run(calls, concurrency, time.perf_counter() - started, latencies)
