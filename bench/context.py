"""`python -m bench.context` (part of `make bench`): shared-context ops against a routed call.

Starts the gateway (SQLite, strict audit) and the echo domain as processes on
loopback, then measures in the same run, from one client process as `bench`:

- `Invoke(echo/echo)`: a routed call through the gateway (the baseline);
- `Put` of a small JSON value (a new version each time, unconditional);
- `Put` with `expected_version` (optimistic concurrency, the normal write);
- `Get` of the latest version.

Each at 1 call in flight (p50/p99 latency) and at `--concurrency` in flight
(throughput). The goal: a context op costs no more than a routed call, so the
ratios op/invoke are the result (<= 1.0 meets it). Prints a table and writes
`bench/results/context-<timestamp>.json` and `context-latest.json`. Tests only
check that a quick run works; they never assert timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.cluster import Cluster
from bench.stats import percentile, ratio
from domains.sdk import ContextClient, GatewayClient
from gateway.errors import VersionConflict

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TRACE = "bench-context"
VALUE = {"case_id": "case-1", "amount": 42.5, "notes": "x" * 64}
ECHO_INPUT = {"text": "hello", "numbers": [1, 2, 3]}

Op = Callable[[int], Awaitable[Any]]


async def _latencies(op: Op, count: int) -> list[float]:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def _throughput(op: Op, count: int, concurrency: int) -> float:
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            await op(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def measure(gateway: str, requests: int, concurrency: int) -> dict[str, dict[str, float]]:
    """Latency and throughput of each operation against the gateway at `gateway`."""
    async with GatewayClient(gateway, domain="bench", insecure=True) as client:
        context = ContextClient(client)
        versions: dict[str, int] = {}
        conflicts: list[str] = []

        async def invoke(i: int) -> None:
            (await client.invoke("echo/echo", ECHO_INPUT)).output_or_raise()

        async def put(i: int) -> None:
            await context.put(TRACE, f"free-{i % 64}", VALUE)

        async def put_expected(i: int) -> None:
            # One key per writer slot: concurrent writers (a window of `concurrency`
            # consecutive indices) almost never race; a lost race re-reads the version.
            key = f"owned-{i % 64}"
            try:
                item = await context.put(TRACE, key, VALUE, expected_version=versions.get(key, 0))
            except VersionConflict:
                conflicts.append(key)
                versions[key] = (await context.get(TRACE, key)).item.version
                return
            versions[key] = item.version

        async def get(i: int) -> None:
            await context.get(TRACE, f"free-{i % 64}")

        operations: dict[str, Op] = {
            "invoke": invoke,
            "put": put,
            "put_expected": put_expected,
            "get": get,
        }
        for op in operations.values():  # warm channels, caches and the 64 keys
            for i in range(64):
                await op(i)
        results: dict[str, dict[str, float]] = {}
        for name, op in operations.items():
            samples = await _latencies(op, requests)
            results[name] = {
                "p50_us": percentile(samples, 50),
                "p99_us": percentile(samples, 99),
                f"per_s_at_{concurrency}": await _throughput(op, requests, concurrency),
            }
        results["put_expected"]["conflicts"] = float(len(conflicts))
        return results


def ratios(results: dict[str, dict[str, float]], concurrency: int) -> dict[str, dict[str, float]]:
    """Each context op against the routed call: latency ratios and throughput ratio."""
    base = results["invoke"]
    key = f"per_s_at_{concurrency}"
    return {
        name: {
            "p50": ratio(r["p50_us"], base["p50_us"]),
            "p99": ratio(r["p99_us"], base["p99_us"]),
            "throughput": ratio(r[key], base[key]),
        }
        for name, r in results.items()
        if name != "invoke"
    }


def print_report(
    results: dict[str, dict[str, float]], relative: dict[str, dict[str, float]], concurrency: int
) -> None:
    """The results table: absolute figures, then ratios against the routed call."""
    table = Table(title="shared context vs a routed call (Invoke echo/echo)", title_justify="left")
    for column in (
        "operation",
        "p50 µs",
        "p99 µs",
        f"calls/s @{concurrency}",
        "p50 ratio",
        "throughput ratio",
        "goal (p50 <= 1.0x)",
    ):
        table.add_column(column)
    for name, r in results.items():
        rel = relative.get(name)
        table.add_row(
            name,
            f"{r['p50_us']:.0f}",
            f"{r['p99_us']:.0f}",
            f"{r[f'per_s_at_{concurrency}']:.0f}",
            f"{rel['p50']:.2f}x" if rel else "1.00x",
            f"{rel['throughput']:.2f}x" if rel else "1.00x",
            ("met" if rel["p50"] <= 1.0 else "missed") if rel else "baseline",
        )
    Console().print(table)


def main() -> None:
    """CLI entry: `python -m bench.context [--quick] [--requests N] [--results-dir DIR]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    parser.add_argument("--quick", action="store_true", help="small run for smoke tests")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    requests = 100 if args.quick else args.requests
    with tempfile.TemporaryDirectory(prefix="bench-context-") as work:
        cluster = Cluster(Path(work))
        try:
            cluster.start_all("WARNING", proxy=False)
            results = asyncio.run(measure(cluster.addresses["gateway"], requests, args.concurrency))
        finally:
            cluster.stop()
    relative = ratios(results, args.concurrency)
    print_report(results, relative, args.concurrency)
    result = {
        "when": datetime.now(UTC).isoformat(),
        "requests": requests,
        "concurrency": args.concurrency,
        "results": results,
        "ratios_to_invoke": relative,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2, sort_keys=True)
    (args.results_dir / f"context-{stamp}.json").write_text(text)
    (args.results_dir / "context-latest.json").write_text(text)


if __name__ == "__main__":
    main()
