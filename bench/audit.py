"""`python -m bench.audit` (part of `make bench`): the audit trail's speed.

Measures, in this process and with the gateway's own code:

- ingest: records/s sustained through `DurableAuditSink` (strict mode: every
  `record()` returns only after its transaction committed) from 1,000 concurrent
  callers, one event per call, into SQLite (WAL, synchronous=FULL) and PostgreSQL
  (target >= 15,000/s each);
- hand-off to durable: latency of `record()` at 2,000 records/s offered at a steady
  rate, on SQLite FULL (target p50 <= 1 ms);
- verify: records/s of `verify_log` over the SQLite log (target >= 50,000/s);
- query: first page (100 records, newest first) of filtered queries over a log of
  `--query-records` records (default 200,000; `--query-records 1000000` for the
  target's size) on SQLite (target <= 100 ms).

Beside them, measured in the same run on the same disk: the same statements through
bare `sqlite3` (no gateway code: one record per transaction, and batches of 500), so a
result can be read as a multiple of what SQLite itself does at that minute (this
machine's speed swings within the hour).

Prints a table and writes `bench/results/audit-<timestamp>.json` and `audit-latest.json`.
PostgreSQL runs in a fresh schema of `--postgres-url` (default: the test database)
that is dropped afterwards; `--no-postgres` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from gateway.audit.verification import verify_log
from gateway.audit.writer import DurableAuditSink
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_log import Checkpointer, pending
from gateway.core.audit_query import AuditQuery
from gateway.core.signed_note import NoteSigner
from gateway.store.audit_store import SqlAuditStore
from gateway.store.audit_tables import audit_records
from gateway.store.database import migrate, open_engine

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ORIGIN = "bench.fedgate/audit"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGETS = {
    "ingest_per_s": 15_000.0,
    "handoff_p50_ms": 1.0,
    "verify_per_s": 50_000.0,
    "query_first_page_ms": 100.0,
}
DOMAINS = [f"domain-{i:02d}" for i in range(20)]
CAPABILITIES = ["score", "pay", "open-case", "lookup", "notify"]
console = Console()


@dataclass(frozen=True)
class Config:
    """What to run."""

    ingest_records: int = 100_000
    callers: int = 1_000
    handoff_rate: int = 2_000
    handoff_seconds: float = 5.0
    query_records: int = 200_000
    postgres_url: str | None = DEFAULT_POSTGRES
    results_dir: Path = RESULTS_DIR


def make_event(i: int, rng: random.Random, now: datetime | None = None) -> AuditEvent:
    """A realistic task event: 20 domains, 5 capabilities, 1% denials, traces of 4."""
    source, target = rng.sample(DOMAINS, 2)
    finished = i % 2 == 1
    return AuditEvent(
        type=EventType.TASK_FINISHED if finished else EventType.TASK_REQUESTED,
        actor=f"{source}/agent/a{rng.randrange(5)}",
        source_domain=source,
        target_domain=target,
        capability=rng.choice(CAPABILITIES),
        trace_id=f"trace-{i // 4}",
        task_id=uuid.uuid4().hex,
        decision="deny" if rng.random() < 0.01 else "allow",
        rule=f"p, {source}, {target}, *, invoke",
        policy_version=3,
        outcome=("completed" if rng.random() < 0.95 else "failed") if finished else "",
        duration_us=rng.randrange(200, 50_000) if finished else 0,
        classifications=("confidential",) if rng.random() < 0.1 else (),
        attributes={"depth": rng.randrange(3), "parent_task_id": ""},
        **({"caller_time": now} if now is not None else {}),
    )


SIGNER = NoteSigner.generate(ORIGIN)
"""The checkpoint key of every log the benchmark writes."""


def _sink(engine: sa.Engine) -> DurableAuditSink:
    return DurableAuditSink(SqlAuditStore(engine), checkpointer=Checkpointer(ORIGIN, SIGNER))


async def ingest(engine: sa.Engine, records: int, callers: int) -> dict[str, Any]:
    """Records/s from `callers` concurrent strict `record()` calls of one event each."""
    sink = _sink(engine)
    rng = random.Random(1)
    events = [make_event(i, rng) for i in range(records)]
    queue = iter(events)

    async def caller() -> None:
        for event in queue:
            await sink.record([event])

    # Warm up (first connections, checkpoint key, page cache), then measure.
    await asyncio.gather(*(sink.record([make_event(i, rng)]) for i in range(2_000)))
    transactions = sink.stats.transactions
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    batches = sink.stats.transactions - transactions
    sink.close()
    return {
        "records": records,
        "callers": callers,
        "seconds": round(elapsed, 3),
        "records_per_s": round(records / elapsed),
        "transactions": batches,
        "mean_batch": round(records / max(1, batches), 1),
    }


async def handoff(engine: sa.Engine, rate: int, seconds: float) -> dict[str, Any]:
    """Latency of strict `record()` calls offered at a steady `rate` per second."""
    sink = _sink(engine)
    rng = random.Random(2)
    await asyncio.gather(*(sink.record([make_event(i, rng)]) for i in range(500)))
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []

    async def one(event: AuditEvent) -> None:
        started = time.perf_counter()
        await sink.record([event])
        latencies.append(time.perf_counter() - started)

    total = int(rate * seconds)
    events = [make_event(i, rng) for i in range(total)]
    begin = time.perf_counter()
    for n, event in enumerate(events):
        due = begin + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(event)))
    await asyncio.gather(*tasks)
    achieved = total / (time.perf_counter() - begin)
    sink.close()
    latencies.sort()
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(achieved),
        "records": total,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p90_ms": round(latencies[int(len(latencies) * 0.9)] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3),
        "mean_batch": round(sink.stats.records / max(1, sink.stats.transactions), 2),
    }


def verify(engine: sa.Engine) -> dict[str, Any]:
    """Records/s of a full verification (every checkpoint's signature is checked too)."""
    store = SqlAuditStore(engine)
    runs = [verify_log(store, [SIGNER.verifier], ORIGIN) for _ in range(2)]
    best = max(runs, key=lambda r: r.records_per_second)
    return {
        "records": best.report.records,
        "ok": best.report.ok,
        "checkpoints": best.report.checkpoints,
        "seconds": round(best.seconds, 3),
        "records_per_s": round(best.records_per_second),
    }


def fill(engine: sa.Engine, records: int) -> tuple[float, datetime]:
    """Appends `records` records in large transactions; returns records/s and the last time."""
    store = SqlAuditStore(engine)
    checkpointer = Checkpointer(ORIGIN, SIGNER, every_records=10_000, every_seconds=3600)
    rng = random.Random(3)
    start = datetime.now(UTC) - timedelta(hours=24)
    step = timedelta(hours=24) / max(1, records)
    began = time.perf_counter()
    batch = 5_000
    for first in range(0, records, batch):
        now = start + step * first
        items = [
            pending(make_event(i, rng, now)) for i in range(first, min(records, first + batch))
        ]
        store.append(items, now=now, checkpointer=checkpointer)
        if first and first % 100_000 == 0:
            console.print(f"  filled {first:,} records", style="dim")
    store.append(
        [], now=start + timedelta(hours=24), checkpointer=checkpointer, force_checkpoint=True
    )
    return records / (time.perf_counter() - began), start + timedelta(hours=24)


def queries(engine: sa.Engine, end: datetime) -> list[dict[str, Any]]:
    """First-page latency of filtered queries (cold = first run, warm = median of 10)."""
    store = SqlAuditStore(engine)
    cases = {
        "target domain": AuditQuery(target_domain="domain-07"),
        "principal": AuditQuery(actor="domain-03/agent/a2"),
        "denials": AuditQuery(decision="deny"),
        "denials to a domain": AuditQuery(decision="deny", target_domain="domain-11"),
        "one trace": AuditQuery(trace_id="trace-1234"),
        "last hour, from a domain": AuditQuery(
            since=end - timedelta(hours=1), source_domain="domain-05"
        ),
        "failed calls of a capability": AuditQuery(outcome="failed", capability="pay"),
        "confidential context": AuditQuery(classification="confidential"),
        "oldest first, a source": AuditQuery(source_domain="domain-09", newest_first=False),
        "scoped auditor (2 domains)": AuditQuery(involving=frozenset({"domain-01", "domain-02"})),
    }
    out = []
    for name, query in cases.items():
        timings = []
        for _ in range(11):
            started = time.perf_counter()
            page = store.query(query)
            timings.append((time.perf_counter() - started) * 1000)
        out.append(
            {
                "query": name,
                "rows": len(page.records),
                "cold_ms": round(timings[0], 2),
                "warm_p50_ms": round(statistics.median(timings[1:]), 2),
            }
        )
    return out


def direct_sqlite(directory: Path, lone: int = 1_000, batches: int = 40) -> dict[str, float]:
    """The append's statements through bare `sqlite3`, on a migrated file in `directory`.

    Rows of the benchmark's shape, written with the connection settings of the
    gateway (WAL, synchronous=FULL, BEGIN IMMEDIATE): the p50 of a one-record
    transaction (lock, insert, head update, commit) and the rate of 500-record ones.
    """
    path = directory / "direct.db"
    engine = open_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    columns = [c.name for c in audit_records.c]
    insert = (
        f"INSERT INTO audit_records ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    head = "UPDATE audit_head SET size = ?, chain_hash = ?, updated_at = ? WHERE id = 1"
    rng = random.Random(4)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLite's UTCDateTime text

    def rows(first: int, count: int) -> list[tuple[Any, ...]]:
        out = []
        for seq in range(first, first + count):
            p = pending(make_event(seq, rng))
            # fmt: off
            out.append((
                seq, p.event_id, p.event_type, now, now, p.trace_id, p.span_id,
                p.parent_span_id, p.actor, p.source_domain, p.target_domain,
                p.capability, p.decision, p.rule, p.policy_version, p.outcome,
                p.duration_us, "[]", p.attributes, os.urandom(32), os.urandom(32),
            ))
            # fmt: on
        return out

    def transact(conn: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT size, chain_hash, frontier FROM audit_head WHERE id = 1").fetchone()
        conn.executemany(insert, batch)
        conn.execute(head, (batch[-1][0] + 1, batch[-1][-1], now))
        conn.execute("COMMIT")

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        singles = [[row] for row in rows(0, lone)]
        for batch in singles[:100]:  # warm up
            transact(conn, batch)
        timings = []
        for batch in singles[100:]:
            started = time.perf_counter()
            transact(conn, batch)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        large = [rows(lone + i * 500, 500) for i in range(batches)]
        started = time.perf_counter()
        for batch in large:
            transact(conn, batch)
        rate = batches * 500 / (time.perf_counter() - started)
    finally:
        conn.close()
    return {"lone_p50_ms": round(timings[len(timings) // 2], 3), "batch_per_s": round(rate)}


def fsync_floor(directory: Path, rounds: int = 200) -> dict[str, float]:
    """Latency of one 4 KiB append plus fsync in `directory`: the floor of a durable commit."""
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    timings = []
    try:
        for _ in range(rounds):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    timings.sort()
    return {
        "p50_ms": round(timings[len(timings) // 2], 3),
        "p90_ms": round(timings[int(len(timings) * 0.9)], 3),
    }


def _postgres_engine(url: str) -> tuple[sa.Engine, sa.Engine, str]:
    admin = open_engine(url)
    schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = open_engine(scoped.render_as_string(hide_password=False))
    return admin, engine, schema


def run(config: Config, work: Path) -> dict[str, Any]:
    """Runs every scenario; returns the results."""
    results: dict[str, Any] = {"targets": TARGETS, "fsync": fsync_floor(work)}
    results["direct_sqlite"] = direct_sqlite(work)
    sqlite_url = f"sqlite:///{work / 'audit.db'}"
    engine = open_engine(sqlite_url)
    migrate(engine)
    console.print(f"ingest into SQLite FULL ({config.ingest_records:,} records)...")
    results["ingest_sqlite"] = asyncio.run(ingest(engine, config.ingest_records, config.callers))
    console.print("verify the SQLite log...")
    results["verify_sqlite"] = verify(engine)
    engine.dispose()

    handoff_engine = open_engine(f"sqlite:///{work / 'handoff.db'}")
    migrate(handoff_engine)
    console.print(f"hand-off latency at {config.handoff_rate:,}/s on SQLite FULL...")
    results["handoff_sqlite"] = asyncio.run(
        handoff(handoff_engine, config.handoff_rate, config.handoff_seconds)
    )
    handoff_engine.dispose()

    if config.postgres_url:
        console.print(f"ingest into PostgreSQL ({config.ingest_records:,} records)...")
        try:
            admin, pg, schema = _postgres_engine(config.postgres_url)
        except sa.exc.OperationalError as exc:
            console.print(f"[yellow]PostgreSQL skipped: {str(exc.orig).strip()}[/]")
        else:
            try:
                migrate(pg)
                results["ingest_postgres"] = asyncio.run(
                    ingest(pg, config.ingest_records, config.callers)
                )
                results["verify_postgres"] = verify(pg)
            finally:
                pg.dispose()
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()

    query_engine = open_engine(f"sqlite:///{work / 'query.db'}")
    migrate(query_engine)
    console.print(f"fill a log of {config.query_records:,} records for the queries...")
    rate, end = fill(query_engine, config.query_records)
    results["query_fill_per_s"] = round(rate)
    results["queries_sqlite"] = {
        "records": config.query_records,
        "pages": queries(query_engine, end),
    }
    query_engine.dispose()
    return results


def report(results: dict[str, Any]) -> bool:
    """Prints the results against the targets; True if every target is met."""
    rows: list[tuple[str, str, str, bool]] = []

    def row(name: str, value: float, target: float, unit: str, higher: bool) -> None:
        met = value >= target if higher else value <= target
        sign = ">=" if higher else "<="
        rows.append((name, f"{value:,.2f} {unit}", f"{sign} {target:,.0f} {unit}", met))

    row(
        "ingest, SQLite FULL",
        results["ingest_sqlite"]["records_per_s"],
        TARGETS["ingest_per_s"],
        "rec/s",
        True,
    )
    if "ingest_postgres" in results:
        row(
            "ingest, PostgreSQL",
            results["ingest_postgres"]["records_per_s"],
            TARGETS["ingest_per_s"],
            "rec/s",
            True,
        )
    handoff_result = results["handoff_sqlite"]
    row(
        f"hand-off p50 at {handoff_result['offered_per_s']:,}/s",
        handoff_result["p50_ms"],
        TARGETS["handoff_p50_ms"],
        "ms",
        False,
    )
    row(
        "verify, SQLite",
        results["verify_sqlite"]["records_per_s"],
        TARGETS["verify_per_s"],
        "rec/s",
        True,
    )
    if "verify_postgres" in results:
        row(
            "verify, PostgreSQL",
            results["verify_postgres"]["records_per_s"],
            TARGETS["verify_per_s"],
            "rec/s",
            True,
        )
    pages = results["queries_sqlite"]["pages"]
    worst = max(pages, key=lambda p: p["cold_ms"])
    row(
        f"first page over {results['queries_sqlite']['records']:,} (worst: {worst['query']})",
        worst["cold_ms"],
        TARGETS["query_first_page_ms"],
        "ms",
        False,
    )
    table = Table(title="audit trail", title_justify="left")
    for column in ("scenario", "measured", "target", ""):
        table.add_column(column)
    for name, value, target, met in rows:
        table.add_row(name, value, target, "[green]met[/]" if met else "[red]missed[/]")
    console.print(table)
    detail = Table(title="first page of filtered queries (100 records)", title_justify="left")
    for column in ("query", "rows", "cold ms", "warm p50 ms"):
        detail.add_column(column)
    for page in pages:
        detail.add_row(
            page["query"], str(page["rows"]), str(page["cold_ms"]), str(page["warm_p50_ms"])
        )
    console.print(detail)
    h = handoff_result
    console.print(
        f"fsync of this disk (the floor of a durable commit): p50 "
        f"{results['fsync']['p50_ms']} ms, p90 {results['fsync']['p90_ms']} ms"
    )
    direct = results["direct_sqlite"]
    console.print(
        f"bare sqlite3, same statements and disk: one-record transaction p50 "
        f"{direct['lone_p50_ms']} ms (hand-off p50 is "
        f"{h['p50_ms'] / direct['lone_p50_ms']:.1f}x that), 500-record transactions "
        f"{direct['batch_per_s']:,} records/s (SQLite ingest is "
        f"{results['ingest_sqlite']['records_per_s'] / direct['batch_per_s']:.2f}x that)"
    )
    console.print(
        f"hand-off: p90 {h['p90_ms']} ms, p99 {h['p99_ms']} ms, max {h['max_ms']} ms, "
        f"{h['mean_batch']} records per transaction; ingest mean batch "
        f"{results['ingest_sqlite']['mean_batch']} (SQLite)"
    )
    return all(met for *_, met in rows)


def write(results: dict[str, Any], directory: Path, started: datetime) -> Path:
    """Writes the timestamped and the latest results file."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "audit",
        "started": started.isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        **results,
    }
    path = directory / f"audit-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    text = json.dumps(document, indent=2, default=str) + "\n"
    path.write_text(text)
    (directory / "audit-latest.json").write_text(text)
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.audit`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ingest-records", type=int, default=Config.ingest_records)
    parser.add_argument("--callers", type=int, default=Config.callers)
    parser.add_argument("--query-records", type=int, default=Config.query_records)
    parser.add_argument("--handoff-seconds", type=float, default=Config.handoff_seconds)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("FEDGATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="PostgreSQL server for the ingest scenario (a fresh schema is used)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    config = Config(
        ingest_records=5_000 if args.quick else args.ingest_records,
        callers=min(args.callers, 200) if args.quick else args.callers,
        handoff_seconds=1.0 if args.quick else args.handoff_seconds,
        query_records=10_000 if args.quick else args.query_records,
        postgres_url=None if args.no_postgres else args.postgres_url,
        results_dir=args.results_dir,
    )
    started = datetime.now(UTC)
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) / 2:
        console.print(f"[yellow]load average {load:.1f}: other work is running, expect noise[/]")
    with tempfile.TemporaryDirectory(prefix="fedgate-bench-audit-") as tmp:
        results = run(config, Path(tmp))
    met = report(results)
    path = write(results, config.results_dir, started)
    console.print(f"results: {path} (and audit-latest.json)")
    if not met:
        # Like the other benchmarks: a missed target is a finding, not a failed run,
        # so `make bench` goes on to the next one.
        console.print("audit trail: targets missed (see the table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
