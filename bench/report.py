"""Prints the results as rich tables and writes them as JSON under `bench/results/`."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from bench.config import BenchConfig
from bench.measure import CLIENT
from bench.scenarios import SCENARIOS
from bench.summary import ECHO

console = Console()
if console.width < 132:  # piped (make, CI): rich would wrap the tables at 80 columns
    console = Console(width=132)


def _num(value: float, digits: int = 0) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _x(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}x"


def _spread(values: list[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "—"
    return f"{min(finite):.2f}..{max(finite):.2f}" if len(finite) > 1 else f"{finite[0]:.2f}"


def print_report(config: BenchConfig, summary: dict[str, Any]) -> None:
    """The headline table, the ratios against the targets, and CPU per call by phase."""
    scenarios = summary["scenarios"]
    levels = [str(c) for c in config.concurrency]
    main = Table(
        title=f"gateway hop — {config.calls} calls per phase x {config.repetitions} "
        f"repetitions, audit {config.audit_mode}",
        title_justify="left",
    )
    main.add_column("scenario")
    main.add_column("p50 µs @1", justify="right")
    main.add_column("p99 µs @1", justify="right")
    for level in levels:
        main.add_column(f"calls/s @{level}", justify="right")
    main.add_column("hop CPU µs/call\n(proxy|gateway)", justify="right")
    main.add_column("echo CPU µs/call", justify="right")
    main.add_column("client CPU µs/call", justify="right")
    for scenario in SCENARIOS:
        s = scenarios[scenario.key]
        cpu = s["cpu_us_per_call"]
        main.add_row(
            s["label"],
            _num(s["latency_us"]["p50"]),
            _num(s["latency_us"]["p99"]),
            *(_num(s["throughput"][level]["calls_per_s"]) for level in levels),
            _num(cpu[scenario.hop]["all"]) if scenario.hop else "—",
            _num(cpu[ECHO]["all"]),
            _num(cpu[CLIENT]["all"]),
        )
    console.print(main)
    added = summary["added_p50_us"]
    console.print(
        f"p50 added over direct: bare proxy +{_num(added['bare_proxy'])} µs, "
        f"gateway +{_num(added['gateway'])} µs"
    )

    ratios = Table(
        title="gateway (c) against the bare proxy (b) and direct (a)", title_justify="left"
    )
    for column in ("metric", "(c)/(b)", "per repetition", "target", "met", "(c)/(a)"):
        ratios.add_column(column, justify="left" if column in ("metric", "met") else "right")
    names = {
        "p50_latency": "p50 latency @1",
        "hop_cpu_per_call": "CPU per call (hop / all servers)",
    }
    for key, row in summary["ratios"].items():
        name = names.get(key, f"throughput @{key.removeprefix('throughput_')}")
        ratios.add_row(
            name,
            _x(row["gateway_vs_bare"]),
            _spread(row["gateway_vs_bare_by_repetition"]),
            row["target_text"],
            "[green]yes[/]" if row["met"] else "[red]NO[/]",
            _x(row["gateway_vs_direct"]),
        )
    console.print(ratios)

    detail = Table(title="CPU µs per call by phase (utime+stime from /proc)", title_justify="left")
    detail.add_column("scenario")
    detail.add_column("process")
    for level in ("1", *levels):
        detail.add_column(f"@{level}", justify="right")
    detail.add_column("all", justify="right")
    for scenario in SCENARIOS:
        for process, by_level in scenarios[scenario.key]["cpu_us_per_call"].items():
            detail.add_row(
                scenarios[scenario.key]["label"],
                process,
                *(_num(by_level[level]) for level in ("1", *levels)),
                _num(by_level["all"]),
            )
    console.print(detail)
    yardstick = summary.get("calibration")
    if yardstick:
        console.print(
            f"machine yardstick: in-process grpc.aio unary round trip p50 "
            f"{_num(yardstick['unary_p50_us'])} µs, "
            f"{_num(yardstick['unary_cpu_us_per_call'])} µs CPU per call"
        )
    share = summary["others_cpu_share"]
    style = "yellow" if share > 0.1 else "dim"
    console.print(
        f"[{style}]other processes used {share:.0%} of the machine's CPU while measuring"
        + (": expect noisy figures[/]" if share > 0.1 else "[/]")
    )
    verdict = "[green]all targets met[/]" if summary["targets_met"] else "[red]targets missed[/]"
    console.print(f"(c)/(b): {verdict}")


def environment(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_generator": "bench main process, grpc.aio, one channel per target",
    }


def write_results(
    config: BenchConfig,
    summary: dict[str, Any],
    started: datetime,
    load_at_start: tuple[float, float, float],
) -> Path:
    """Writes `gateway_hop-<timestamp>.json` and `latest.json`; returns the first path."""
    config.results_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "gateway_hop",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "environment": environment(load_at_start),
        **summary,
    }
    text = json.dumps(_finite(document), indent=2) + "\n"
    path = config.results_dir / f"gateway_hop-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(text)
    (config.results_dir / "latest.json").write_text(text)
    return path


def _finite(value: Any) -> Any:
    """The document with NaN (undefined figures) as null, so it stays strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
