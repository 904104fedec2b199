"""Turns measured phases into the figures, ratios and target verdicts that get reported."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.config import BenchConfig
from bench.cpu import OTHERS
from bench.measure import CLIENT, Phase
from bench.scenarios import BARE_PROXY, DIRECT, GATEWAY, SCENARIOS, Scenario
from bench.stats import median, percentile, ratio

ECHO = "echo"


@dataclass(frozen=True)
class Goal:
    """A goal from the issue for a gateway/(bare proxy) ratio."""

    metric: str
    limit: float
    at_most: bool

    def met(self, value: float) -> bool:
        """True if `value` satisfies the target."""
        if math.isnan(value):
            return False
        return value <= self.limit if self.at_most else value >= self.limit

    def describe(self) -> str:
        """The target as text, for example `<= 1.20x`."""
        return f"{'<=' if self.at_most else '>='} {self.limit:.2f}x"


GOALS = {
    "p50_latency": Goal("p50_latency", 1.2, at_most=True),
    "hop_cpu_per_call": Goal("hop_cpu_per_call", 1.3, at_most=True),
    "throughput": Goal("throughput", 0.8, at_most=False),
}


def processes_of(scenario: Scenario) -> list[str]:
    """Processes whose CPU a scenario reports: its hop (if any), the echo domain, the client."""
    return [p for p in (scenario.hop, ECHO, CLIENT) if p]


def _cpu_us_per_call(phases: Iterable[Phase], process: str) -> float:
    chosen = list(phases)
    calls = sum(p.run.calls for p in chosen)
    return sum(p.cpu_s[process] for p in chosen) / calls * 1e6 if calls else math.nan


def scenario_summary(
    config: BenchConfig, phases: list[Phase], scenario: Scenario
) -> dict[str, Any]:
    """Latency at 1 in flight, throughput per concurrency, CPU per call per process."""
    mine = [p for p in phases if p.scenario == scenario.key]
    levels = (1, *config.concurrency)
    at = {c: [p for p in mine if p.run.concurrency == c] for c in levels}
    sequential = [lat for p in at[1] for lat in p.run.latencies_us]
    throughput: dict[str, Any] = {}
    for c in config.concurrency:
        latencies = [lat for p in at[c] for lat in p.run.latencies_us]
        by_rep = [p.run.throughput for p in at[c]]
        throughput[str(c)] = {
            "calls_per_s": median(by_rep),
            "by_repetition": by_rep,
            "p50_us": percentile(latencies, 50),
            "p99_us": percentile(latencies, 99),
        }
    cpu = {
        process: {
            **{str(c): _cpu_us_per_call(at[c], process) for c in levels},
            "all": _cpu_us_per_call(mine, process),
        }
        for process in processes_of(scenario)
    }
    servers = [p for p in (scenario.hop, ECHO) if p]
    return {
        "label": scenario.label,
        "hop": scenario.hop,
        "latency_us": {
            "p50": percentile(sequential, 50),
            "p99": percentile(sequential, 99),
            "mean": sum(sequential) / len(sequential) if sequential else math.nan,
            "p50_by_repetition": [percentile(p.run.latencies_us, 50) for p in at[1]],
            "samples": len(sequential),
        },
        "throughput": throughput,
        "cpu_us_per_call": cpu,
        "server_cpu_us_per_call": sum(cpu[p]["all"] for p in servers),
    }


def _by_repetition(config: BenchConfig, phases: list[Phase]) -> dict[str, list[float]]:
    """(c)/(b) of each metric within each repetition: how much the ratios move run to run."""
    result: dict[str, list[float]] = {"p50_latency": [], "hop_cpu_per_call": []}
    for level in config.concurrency:
        result[f"throughput_{level}"] = []
    for rep in range(1, config.repetitions + 1):

        def of(scenario: Scenario, level: int | None, rep: int = rep) -> list[Phase]:
            return [
                p
                for p in phases
                if p.scenario == scenario.key
                and p.repetition == rep
                and (level is None or p.run.concurrency == level)
            ]

        p50 = {
            s.key: percentile([x for p in of(s, 1) for x in p.run.latencies_us], 50)
            for s in (BARE_PROXY, GATEWAY)
        }
        result["p50_latency"].append(ratio(p50[GATEWAY.key], p50[BARE_PROXY.key]))
        result["hop_cpu_per_call"].append(
            ratio(
                _cpu_us_per_call(of(GATEWAY, None), "gateway"),
                _cpu_us_per_call(of(BARE_PROXY, None), "proxy"),
            )
        )
        for level in config.concurrency:
            gateway, bare = (
                sum(p.run.throughput for p in of(s, level)) for s in (GATEWAY, BARE_PROXY)
            )
            result[f"throughput_{level}"].append(ratio(gateway, bare))
    return result


def ratios(
    config: BenchConfig, scenarios: dict[str, dict[str, Any]], phases: list[Phase]
) -> dict[str, Any]:
    """(c)/(b) and (c)/(a) for p50, CPU per call and throughput, with target verdicts."""
    a, b, c = (scenarios[s.key] for s in (DIRECT, BARE_PROXY, GATEWAY))
    rows: dict[str, Any] = {
        "p50_latency": {
            "gateway_vs_bare": ratio(c["latency_us"]["p50"], b["latency_us"]["p50"]),
            "gateway_vs_direct": ratio(c["latency_us"]["p50"], a["latency_us"]["p50"]),
            "target": "p50_latency",
        },
        "hop_cpu_per_call": {
            "gateway_vs_bare": ratio(
                c["cpu_us_per_call"]["gateway"]["all"], b["cpu_us_per_call"]["proxy"]["all"]
            ),
            # With no hop in (a), compare everything the servers spend per call.
            "gateway_vs_direct": ratio(c["server_cpu_us_per_call"], a["server_cpu_us_per_call"]),
            "target": "hop_cpu_per_call",
        },
    }
    for level in config.concurrency:
        key = str(level)
        rows[f"throughput_{level}"] = {
            "gateway_vs_bare": ratio(
                c["throughput"][key]["calls_per_s"], b["throughput"][key]["calls_per_s"]
            ),
            "gateway_vs_direct": ratio(
                c["throughput"][key]["calls_per_s"], a["throughput"][key]["calls_per_s"]
            ),
            "target": "throughput",
        }
    by_rep = _by_repetition(config, phases)
    for key, row in rows.items():
        row["gateway_vs_bare_by_repetition"] = by_rep[key]
        goal = GOALS[row["target"]]
        row["target_text"] = goal.describe()
        row["met"] = goal.met(row["gateway_vs_bare"])
    return rows


def summarize(config: BenchConfig, phases: list[Phase]) -> dict[str, Any]:
    """Every figure of the run, JSON-ready."""
    scenarios = {s.key: scenario_summary(config, phases, s) for s in SCENARIOS}
    a, b, c = (scenarios[s.key]["latency_us"]["p50"] for s in (DIRECT, BARE_PROXY, GATEWAY))
    rows = ratios(config, scenarios, phases)
    elapsed = sum(p.run.elapsed_s for p in phases)
    others = sum(p.cpu_s[OTHERS] for p in phases)
    return {
        "scenarios": scenarios,
        "others_cpu_share": others / (elapsed * (os.cpu_count() or 1)) if elapsed else math.nan,
        "added_p50_us": {"bare_proxy": b - a, "gateway": c - a},
        "ratios": rows,
        "targets_met": all(r["met"] for r in rows.values()),
        "phases": [
            {
                "scenario": p.scenario,
                "repetition": p.repetition,
                "concurrency": p.run.concurrency,
                "calls": p.run.calls,
                "elapsed_s": p.run.elapsed_s,
                "calls_per_s": p.run.throughput,
                "p50_us": percentile(p.run.latencies_us, 50),
                "p99_us": percentile(p.run.latencies_us, 99),
                "cpu_s": p.cpu_s,
            }
            for p in phases
        ],
    }
