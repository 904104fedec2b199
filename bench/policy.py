"""`python -m bench.policy` (part of `make bench`): the shared policy's decision speed.

For 1k / 10k / 100k policy lines plus as many role assignments over 50 domains, it
measures, in this process and with the gateway's own code (`CasbinPolicy`):

- build: compiling the rules into the FastEnforcer path;
- uncached decision p50 / p99 (target at 100k: p50 <= 100 µs, p99 <= 250 µs);
- cached decision p50 (a hit in the (policy version, request) LRU; target <= 2 µs);
- the plain `casbin.Enforcer` on the same rules (a few requests: it scans every rule);
- full reload at 100k (target <= 3 s): the rules read back from a SQLite policy store
  and compiled in a worker thread while this thread keeps deciding (5,000 uncached
  decisions a second, then flat out), then swapped; the decisions served meanwhile,
  their worst latency, and that none saw a missing or partial policy.

The generated policy: each domain has `lines / 50 / 10` capabilities and 10 roles;
every role of a domain may invoke every capability of it (so a request's (domain,
capability) bucket holds 10 rules), and each role assignment gives one of the
domain's principals one role there. Requests pick a domain, one of its capabilities
and a principal at random; about half are allowed.

Prints a table and writes `bench/results/policy-<timestamp>.json` and `policy-latest.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import casbin
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine, make_url

from gateway.core.clock import utcnow
from gateway.core.decision import Action
from gateway.core.models import Principal
from gateway.core.policy import CasbinPolicy, PolicyRule
from gateway.core.policy.compiled import RuleListAdapter, paused_gc
from gateway.store.database import migrate, open_engine
from gateway.store.policy_store import SqlPolicyStore

MODEL = Path(__file__).resolve().parent.parent / "policies" / "model.conf"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DOMAINS = 50
ROLES = 10
SIZES = (1_000, 10_000, 100_000)
TARGETS = {"p50_us": 100.0, "p99_us": 250.0, "cached_p50_us": 2.0, "reload_s": 3.0}
INVOKE = Action.INVOKE

console = Console(width=max(Console().width, 120))


@dataclass(frozen=True)
class Workload:
    """A generated policy and requests against it."""

    lines: int
    rules: list[PolicyRule]
    requests: list[tuple[Principal, str, str]]


def generate(lines: int, requests: int, seed: int = 7) -> Workload:
    """`lines` permission rules and `lines` role assignments over 50 domains."""
    rnd = random.Random(seed)
    per_domain = lines // DOMAINS
    capabilities = max(1, per_domain // ROLES)
    principals = max(2, per_domain)
    rules: list[PolicyRule] = []
    for d in range(DOMAINS):
        dom = f"dom{d}"
        for i in range(per_domain):
            rules.append(
                PolicyRule("p", (f"{dom}-role{i % ROLES}", dom, f"cap{i // ROLES}", "invoke"))
            )
        for i in range(per_domain):
            # Half of the domain's principals get a role; the others hold none there.
            who = f"caller{rnd.randrange(principals * 2)}"
            rules.append(PolicyRule("g", (who, f"{dom}-role{i % ROLES}", dom)))
    picked = [
        (
            Principal(f"caller{rnd.randrange(principals * 2)}"),
            f"dom{rnd.randrange(DOMAINS)}",
            f"cap{rnd.randrange(capabilities)}",
        )
        for _ in range(requests)
    ]
    return Workload(lines, rules, picked)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time_decisions(
    policy: CasbinPolicy, requests: list[tuple[Principal, str, str]], cpu: list[float] | None = None
) -> list[float]:
    """Wall-clock µs per decision; with `cpu`, also this thread's CPU µs per decision.

    CPU time leaves out the time the thread waited for a processor, so it is the
    figure to trust on a busy machine; wall clock is what a caller sees.
    """
    clock = time.perf_counter_ns
    timings: list[float] = []
    if cpu is None:  # the lean loop: cache hits take about half a microsecond
        for principal, dom, obj in requests:
            started = clock()
            policy.decide(principal, dom, obj, INVOKE)
            timings.append((clock() - started) / 1000)
        return timings
    thread_clock = time.thread_time_ns
    for principal, dom, obj in requests:
        started, started_cpu = clock(), thread_clock()
        policy.decide(principal, dom, obj, INVOKE)
        ended_cpu, ended = thread_clock(), clock()
        timings.append((ended - started) / 1000)
        cpu.append((ended_cpu - started_cpu) / 1000)
    return timings


def measure_size(lines: int, requests: int, plain_requests: int) -> dict[str, Any]:
    """Build, uncached, cached and plain-Enforcer figures for one policy size."""
    work = generate(lines, requests)
    model = MODEL.read_text()
    started = time.perf_counter()
    uncached = CasbinPolicy(model, work.rules, version=1, cache_size=0)
    build_s = time.perf_counter() - started

    _time_decisions(uncached, work.requests[: min(2_000, requests)])  # warm-up
    cpu: list[float] = []
    timings = _time_decisions(uncached, work.requests, cpu)
    allowed = sum(uncached.decide(p, d, o, INVOKE).allowed for p, d, o in work.requests[:2_000])

    cached = CasbinPolicy(model, work.rules, version=1)
    hot = work.requests[:1_000]
    _time_decisions(cached, hot)  # fills the cache
    hits = _time_decisions(cached, hot * 20)

    enforcer = casbin.Enforcer(casbin.Enforcer.new_model(text=model), RuleListAdapter(work.rules))
    enforcer.get_role_manager().matching_func = None
    plain: list[float] = []
    for principal, dom, obj in work.requests[:plain_requests]:
        t0 = time.perf_counter_ns()
        enforcer.enforce(principal.domain, dom, obj, "invoke")
        plain.append((time.perf_counter_ns() - t0) / 1000)
    return {
        "lines": lines,
        "role_assignments": lines,
        "build_s": round(build_s, 3),
        "uncached": {
            "decisions": len(timings),
            "p50_us": round(_percentile(timings, 0.50), 1),
            "p99_us": round(_percentile(timings, 0.99), 1),
            "mean_us": round(statistics.fmean(timings), 1),
            "cpu_p50_us": round(_percentile(cpu, 0.50), 1),
            "cpu_p99_us": round(_percentile(cpu, 0.99), 1),
            "allowed_share": round(allowed / min(2_000, requests), 2),
        },
        "cached": {
            "decisions": len(hits),
            "p50_us": round(_percentile(hits, 0.50), 2),
            "p99_us": round(_percentile(hits, 0.99), 2),
        },
        "plain_enforcer": {
            "decisions": len(plain),
            "p50_us": round(_percentile(plain, 0.50), 1),
        },
    }


@contextlib.contextmanager
def _database(work_dir: Path, postgres_url: str | None) -> Iterator[tuple[str, str]]:
    """(name, URL) of an empty database: SQLite in `work_dir`, or a fresh PostgreSQL schema."""
    if postgres_url is None:
        yield "SQLite", f"sqlite:///{work_dir / 'policy.db'}"
        return
    schema = f"bench_policy_{uuid.uuid4().hex[:8]}"
    admin = open_engine(postgres_url)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield "PostgreSQL", url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def measure_reload(
    lines: int, work_dir: Path, postgres_url: str | None = None
) -> list[dict[str, Any]]:
    """Full reloads from a SQLite policy store at `lines`, with decisions served throughout.

    Twice: while another thread makes uncached decisions at 5,000 per second (several
    times what one gateway process routes), and while it decides flat out (a stress
    case: the reload then gets about half of the interpreter).
    """
    work = generate(lines, 5_000, seed=11)
    model = MODEL.read_text()
    with _database(work_dir, postgres_url) as (backend, url):
        engine = open_engine(url)
        try:
            return _reloads(lines, work, model, engine, backend)
        finally:
            engine.dispose()


def _reloads(
    lines: int, work: Workload, model: str, engine: Engine, backend: str
) -> list[dict[str, Any]]:
    migrate(engine)
    store = SqlPolicyStore(engine)
    keeper = PolicyRule("p", ("keeper", "dom0", "health", "invoke"))
    started = time.perf_counter()
    store.seed([*work.rules, keeper], actor="bench", now=utcnow())
    seed_s = time.perf_counter() - started
    first = store.load()
    policy = CasbinPolicy(model, first.rules, version=first.version, cache_size=0)
    runs = []
    for n, rate in enumerate((5_000.0, None)):
        newcomer = PolicyRule("p", (f"newcomer{n}", "dom1", "cap0", "invoke"))
        store.add([newcomer], actor="bench", now=utcnow())
        run = _reload_once(policy, store, work, newcomer, rate)
        runs.append(
            {
                "lines": lines,
                "role_assignments": lines,
                "store": backend,
                "seed_store_s": round(seed_s, 2),
                **run,
            }
        )
    return runs


def _reload_once(
    policy: CasbinPolicy,
    store: SqlPolicyStore,
    work: Workload,
    newcomer: PolicyRule,
    rate: float | None,
) -> dict[str, Any]:
    done = threading.Event()
    phases: dict[str, float] = {}
    failures: list[BaseException] = []

    def reload() -> None:
        try:
            # What PolicySync.refresh does in its worker thread (timed in two parts).
            t0 = time.perf_counter()
            with paused_gc():
                loaded = store.load()
                phases["load_s"] = time.perf_counter() - t0
                t1 = time.perf_counter()
                compiled = policy.compile(loaded.rules, loaded.version)
                phases["compile_s"] = time.perf_counter() - t1
            policy.install(compiled)
            phases["total_s"] = time.perf_counter() - t0
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            done.set()

    keeper = Principal("keeper")
    latencies: list[float] = []
    missing = 0
    worker = threading.Thread(target=reload, name="policy-reload")
    version_before = policy.version
    next_at = time.perf_counter()
    worker.start()
    index = 0
    while not done.is_set():
        principal, dom, obj = work.requests[index % len(work.requests)]
        index += 1
        t0 = time.perf_counter_ns()
        policy.decide(principal, dom, obj, INVOKE)
        missing += not policy.decide(keeper, "dom0", "health", INVOKE).allowed
        latencies.append((time.perf_counter_ns() - t0) / 2000)
        if rate is not None:
            next_at += 2 / rate
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    worker.join()
    if failures:
        raise failures[0]
    return {
        "decision_rate": "flat out" if rate is None else f"{rate:,.0f}/s",
        "load_s": round(phases["load_s"], 2),
        "compile_s": round(phases["compile_s"], 2),
        "reload_s": round(phases["total_s"], 2),
        "decisions_during_reload": len(latencies) * 2,
        "decision_p50_us_during_reload": round(_percentile(latencies, 0.5), 1),
        "decision_max_ms_during_reload": round(max(latencies) / 1000, 2),
        "decisions_without_policy": missing,
        "new_version_live": policy.version == version_before + 1
        and policy.decide(Principal(newcomer.values[0]), "dom1", "cap0", INVOKE).allowed,
    }


def _k(lines: int) -> str:
    return f"{lines // 1000}k" if lines % 1000 == 0 else f"{lines:,}"


def _mark(value: float, target: float) -> str:
    return f"[green]{value:g}[/]" if value <= target else f"[red]{value:g}[/]"


def print_report(sizes: list[dict[str, Any]], reload: list[dict[str, Any]] | None) -> None:
    """The decision table and the reload line, with targets marked."""
    table = Table(
        title=f"policy decisions — {DOMAINS} domains, {ROLES} rules per (domain, capability)",
        title_justify="left",
    )
    for column in (
        "p + g lines",
        "build s",
        "uncached p50 µs",
        "uncached p99 µs",
        "on-CPU p50 / p99 µs",
        "cached p50 µs",
        "plain Enforcer p50 µs",
    ):
        table.add_column(column, justify="right")
    for row in sizes:
        top = row["lines"] == max(SIZES)
        p50, p99 = row["uncached"]["p50_us"], row["uncached"]["p99_us"]
        table.add_row(
            f"{_k(row['lines'])} + {_k(row['role_assignments'])}",
            f"{row['build_s']:.2f}",
            _mark(p50, TARGETS["p50_us"]) if top else f"{p50:g}",
            _mark(p99, TARGETS["p99_us"]) if top else f"{p99:g}",
            f"{row['uncached']['cpu_p50_us']:g} / {row['uncached']['cpu_p99_us']:g}",
            _mark(row["cached"]["p50_us"], TARGETS["cached_p50_us"]),
            f"{row['plain_enforcer']['p50_us']:,.0f}",
        )
    console.print(table)
    console.print(
        f"targets at {max(SIZES):,}: uncached p50 <= {TARGETS['p50_us']:g} µs, "
        f"p99 <= {TARGETS['p99_us']:g} µs; cached p50 <= {TARGETS['cached_p50_us']:g} µs"
    )
    for run in reload or []:
        console.print(
            f"full reload at {run['lines']:,} + {run['role_assignments']:,} "
            f"(decisions {run['decision_rate']}): "
            f"{_mark(run['reload_s'], TARGETS['reload_s'])} s "
            f"(load from {run['store']} {run['load_s']} s + compile {run['compile_s']} s; "
            f"target <= {TARGETS['reload_s']:g} s) while serving "
            f"{run['decisions_during_reload']:,} decisions "
            f"(p50 {run['decision_p50_us_during_reload']} µs, "
            f"worst {run['decision_max_ms_during_reload']} ms), "
            f"{run['decisions_without_policy']} without the policy; "
            f"new version live: {run['new_version_live']}"
        )


def write_results(result: dict[str, Any], results_dir: Path) -> Path:
    """`policy-<timestamp>.json` and `policy-latest.json` in `results_dir`."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"policy-{stamp}.json"
    text = json.dumps(result, indent=2) + "\n"
    path.write_text(text)
    (results_dir / "policy-latest.json").write_text(text)
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.policy`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.policy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in SIZES),
        help="policy lines to measure, comma-separated (default 1000,10000,100000)",
    )
    parser.add_argument("--requests", type=int, default=20_000, help="uncached decisions per size")
    parser.add_argument("--quick", action="store_true", help="small run for smoke tests")
    parser.add_argument("--no-reload", action="store_true", help="skip the reload measurement")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="reload from PostgreSQL at URL (a scratch schema, dropped after) instead of SQLite",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    requests = args.requests
    if args.quick:
        sizes, requests = [1_000, 10_000], 2_000
    clock = time.perf_counter()
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) / 2:
        console.print(
            f"[yellow]load average {load:.1f} on {os.cpu_count()} CPUs: other work is running; "
            "wall-clock tails will be noisy (the on-CPU column is not)[/]"
        )
    results = []
    for lines in sizes:
        console.print(f"measuring {lines:,} lines ...", style="dim")
        results.append(measure_size(lines, requests, plain_requests=20 if lines > 10_000 else 200))
        gc.collect()
    reload = None
    if not args.no_reload:
        reload_lines = max(sizes)
        console.print(f"measuring a full reload at {reload_lines:,} lines ...", style="dim")
        with tempfile.TemporaryDirectory(prefix="fedgate-policy-bench-") as tmp:
            reload = measure_reload(reload_lines, Path(tmp), args.postgres)
    print_report(results, reload)
    summary = {
        "benchmark": "policy",
        "started": datetime.now(UTC).isoformat(),
        "python": sys.version.split()[0],
        "pycasbin": casbin_version(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg": os.getloadavg(),
        },
        "targets": TARGETS,
        "domains": DOMAINS,
        "rules_per_bucket": ROLES,
        "sizes": results,
        "reload": reload,
        "seconds": round(time.perf_counter() - clock, 1),
    }
    path = write_results(summary, args.results_dir)
    console.print(f"results: {path} (and policy-latest.json); {summary['seconds']:.0f}s in all")
    return 0


def casbin_version() -> str:
    """The installed pycasbin version."""
    from importlib.metadata import version

    return version("pycasbin")


if __name__ == "__main__":
    sys.exit(main())
