"""Profiles the hop (gateway or bare proxy) under load with py-spy: where its time goes.

    .venv/bin/pip install py-spy
    python -m bench.profile_hop --process gateway --calls 4000 --concurrency 16
    python -m bench.profile_hop --process proxy   # the same load through the bare proxy

The profiled process runs under `py-spy record` (py-spy starts it: attaching to a
running process needs ptrace rights that sandboxes often lack); the other processes
run as in `python -m bench`. By default only samples holding the GIL count, so idle
waits do not. The raw stacks stay in the output folder for flamegraph tools.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
from rich.table import Table

from bench import load
from bench.cluster import Cluster
from bench.config import RESULTS_DIR
from bench.report import console
from bench.scenarios import BARE_PROXY, GATEWAY, Scenario
from bench.stacks import Profile, read

PROJECT = ("gateway/", "domains/")


SCENARIOS = {"gateway": GATEWAY, "proxy": BARE_PROXY}


async def drive(scenario: Scenario, address: str, calls: int, concurrency: int) -> load.Run:
    """Sends `calls` calls with `concurrency` in flight over one channel."""
    async with grpc.aio.insecure_channel(address) as channel:
        target = scenario.target(channel)
        await load.run(target, min(200, calls), concurrency)  # warm-up
        return await load.run(target, calls, concurrency)


def _table(title: str, rows: list[tuple[str, int]], total: int, calls: int, rate: int) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("where")
    table.add_column("share", justify="right")
    table.add_column("µs/call", justify="right")
    for name, count in rows:
        table.add_row(name, f"{count / total:.1%}", f"{count / rate / calls * 1e6:.0f}")
    return table


def print_profile(profile: Profile, calls: int, rate: int, top: int) -> None:
    """Categories, gateway functions by inclusive time, and hottest functions by self time."""
    total = max(profile.samples, 1)
    console.print(
        f"{profile.samples} samples at {rate} Hz while serving ({profile.skipped} start-up/"
        f"shut-down samples left out): ~{profile.samples / rate / calls * 1e6:.0f} µs of "
        "sampled Python time per call"
    )
    console.print(
        _table("self time by library", profile.categories.most_common(), total, calls, rate)
    )
    own = [
        (profile.label(k), n)
        for k, n in profile.inclusive.most_common()
        if k[1].startswith(PROJECT) or "/gateway/" in k[1] or "/domains/" in k[1]
    ]
    if own:
        console.print(_table("project code, inclusive time", own[:top], total, calls, rate))
    hottest = [(profile.label(k), n) for k, n in profile.self_time.most_common(top)]
    console.print(_table("hottest functions, self time", hottest, total, calls, rate))


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.profile_hop`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_hop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--process", choices=sorted(SCENARIOS), default="gateway")
    parser.add_argument("--calls", type=int, default=4000, help="profiled calls")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--native", action="store_true", help="include native (C) frames")
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample threads that do not hold the GIL too (mostly idle waits)",
    )
    parser.add_argument("--gateway-log-level", default="INFO")
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    parser.add_argument("--out", type=Path, default=None, help="folder for the raw stacks")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        console.print("[red]py-spy not found:[/] .venv/bin/pip install py-spy")
        return 1
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or RESULTS_DIR / f"profile-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    scenario = SCENARIOS[args.process]
    raw = out / f"{args.process}.pyspy.txt"
    wrapper = [py_spy, "record", "-r", str(args.rate), "-f", "raw", "-o", str(raw)]
    wrapper += ["--native"] if args.native else []
    wrapper += [] if args.all_threads else ["--gil"]
    wrapper += ["--"]
    with tempfile.TemporaryDirectory(prefix="fedgate-profile-") as tmp:
        cluster = Cluster(Path(tmp), wrappers={args.process: tuple(wrapper)})
        try:
            cluster.start_all(args.gateway_log_level, proxy=args.process == "proxy")
            started = time.monotonic()
            address = cluster.addresses[scenario.entry]
            run = asyncio.run(drive(scenario, address, args.calls, args.concurrency))
            console.print(
                f"{run.calls} calls to {scenario.label} at {args.concurrency} in flight: "
                f"{run.throughput:.0f} calls/s under the profiler "
                f"({time.monotonic() - started:.1f}s)"
            )
        finally:
            cluster.stop()
            for log in cluster.log_dir.glob("*.log"):
                shutil.copy(log, out / log.name)
    if not raw.exists():
        console.print(f"[red]py-spy wrote no profile[/]; see {out}/{args.process}.log")
        return 1
    # Warm-up calls are in the profile too; spread the samples over all calls made.
    print_profile(read(raw), run.calls + min(200, args.calls), args.rate, args.top)
    console.print(f"raw stacks: {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
