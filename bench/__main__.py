"""`python -m bench` (`make bench`): the gateway-hop benchmark.

Starts the gateway (SQLite in a temporary folder), the echo domain and a bare grpc.aio
proxy as separate processes on loopback, drives them from this process, prints the
tables and writes `bench/results/gateway_hop-<timestamp>.json` and `latest.json`.
Every child is stopped on the way out, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import grpc

from bench.cluster import Cluster
from bench.config import RESULTS_DIR, BenchConfig
from bench.measure import measure
from bench.report import console, print_report, write_results
from bench.summary import summarize
from bench.targets import CallFailed
from gateway.cli.processes import StartupFailed

QUICK = {"calls": 150, "repetitions": 2, "warmup": 60}


def _levels(text: str) -> tuple[int, ...]:
    levels = tuple(int(part) for part in text.split(",") if part.strip())
    if not levels or min(levels) < 2:
        raise argparse.ArgumentTypeError("give in-flight levels >= 2, for example 16,64")
    return levels


def parse_args(argv: list[str] | None) -> BenchConfig:
    """The command line as a `BenchConfig`."""
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--calls", type=int, help=f"calls per phase and repetition (default {defaults.calls})"
    )
    parser.add_argument(
        "--repetitions", type=int, help=f"measured repetitions (default {defaults.repetitions})"
    )
    parser.add_argument(
        "--warmup", type=int, help=f"warm-up calls per scenario (default {defaults.warmup})"
    )
    parser.add_argument(
        "--concurrency",
        type=_levels,
        default=defaults.concurrency,
        help="in-flight levels of the throughput phases (default 16,64)",
    )
    parser.add_argument("--quick", action="store_true", help=f"small run for smoke tests ({QUICK})")
    parser.add_argument(
        "--gateway-log-level",
        default=defaults.gateway_log_level,
        help="the gateway's --log-level (default INFO, as `fedgate serve`)",
    )
    parser.add_argument(
        "--audit-mode",
        choices=("strict", "relaxed"),
        default=defaults.audit_mode,
        help="the gateway's audit mode (default strict, as `fedgate serve`); relaxed "
        "measures the hop without waiting for the audit trail's commits",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON results go"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep the database and logs here (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    sizes = dict(QUICK) if args.quick else {}
    for name in ("calls", "repetitions", "warmup"):
        value = getattr(args, name)
        if value is not None:
            sizes[name] = value
    config = BenchConfig(
        **sizes,
        concurrency=args.concurrency,
        gateway_log_level=args.gateway_log_level,
        audit_mode=args.audit_mode,
        results_dir=args.results_dir,
        work_dir=args.work_dir,
    )
    if config.calls < 1 or config.repetitions < 1 or config.warmup < 0:
        parser.error("--calls and --repetitions must be >= 1, --warmup >= 0")
    return config


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the children


def run(config: BenchConfig, work_dir: Path) -> int:
    """Starts the processes, measures, reports; returns the exit code."""
    cluster = Cluster(work_dir)
    started = datetime.now(UTC)
    clock = time.monotonic()
    load_at_start = os.getloadavg()
    if load_at_start[0] > (os.cpu_count() or 1) / 2:
        console.print(
            f"[yellow]load average {load_at_start[0]:.1f} on {os.cpu_count()} CPUs: "
            "other work is running, expect noisy figures[/]"
        )
    try:
        console.print(f"starting gateway, echo domain and bare proxy (logs in {cluster.log_dir})")
        cluster.start_all(config.gateway_log_level, audit_mode=config.audit_mode)
        console.print(f"ready in {time.monotonic() - clock:.1f}s: {cluster.addresses}")
        measured = asyncio.run(
            measure(
                config,
                cluster.addresses,
                cluster.pids(),
                lambda line: console.print(line, style="dim"),
            )
        )
    except (StartupFailed, CallFailed, grpc.aio.AioRpcError, TimeoutError) as exc:
        console.print(f"[red]benchmark failed:[/] {type(exc).__name__}: {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: stopping every process")
        return 130
    finally:
        cluster.stop()
    summary = summarize(config, measured.phases)
    summary["calibration"] = measured.calibration
    print_report(config, summary)
    path = write_results(config, summary, started, load_at_start)
    console.print(f"results: {path} (and latest.json); {time.monotonic() - clock:.0f}s in all")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench`."""
    config = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if config.work_dir is not None:
        config.work_dir.mkdir(parents=True, exist_ok=True)
        return run(config, config.work_dir)
    with tempfile.TemporaryDirectory(prefix="fedgate-bench-") as tmp:
        return run(config, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
