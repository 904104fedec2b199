"""Context writes through the durable audit trail: a write and its records in one commit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from gateway.audit.writer import DurableAuditSink
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_query import AuditQuery
from gateway.core.audit_record import AuditRecord
from gateway.core.audited_write import AuditedWrite, Transaction
from gateway.core.content_hash import ContentHasher
from gateway.core.context.access import ContextAccess
from gateway.core.context.grant import GrantSigner
from gateway.core.context.items import ContextItem, ContextWrite
from gateway.core.context.space import ContextSpace
from gateway.core.models import Classification, Principal
from gateway.core.policy import CasbinPolicy
from gateway.errors import AuditUnavailable, NotFound, VersionConflict
from gateway.store.audit_store import SqlAuditStore
from gateway.store.context_store import SqlContextStore

SUPPORT = Principal("support", "agent/intake")
TRACE = "trace-audited"


@pytest.fixture
async def trail(db_engine: Engine) -> AsyncIterator[DurableAuditSink]:
    sink = DurableAuditSink(SqlAuditStore(db_engine))
    yield sink
    sink.close()


@pytest.fixture
def store(db_engine: Engine) -> SqlContextStore:
    return SqlContextStore(db_engine)


@pytest.fixture
def space(
    store: SqlContextStore, trail: DurableAuditSink, default_policy: CasbinPolicy
) -> ContextSpace:
    return ContextSpace(
        store,
        ContextAccess(default_policy, ContentHasher(b"c" * 32)),
        trail,
        GrantSigner(b"g" * 32),
    )


def put(key: str, value: object, **kw: object) -> ContextWrite:
    return ContextWrite(
        trace_id=TRACE,
        key=key,
        value=value,
        classification=Classification.CONFIDENTIAL,
        **kw,  # type: ignore[arg-type]
    )


def store_put(store: SqlContextStore, tx: Transaction | None) -> ContextItem:
    """Support's item `case` written straight to the store, in transaction `tx`."""
    return store.put(
        trace_id=TRACE,
        key="case",
        value=1,
        classification=Classification.INTERNAL,
        owner="support",
        writer="support",
        expected_version=None,
        expires_at=None,
        now=datetime.now(UTC),
        within=tx,
    )


def log_of(trail: DurableAuditSink) -> list[AuditRecord]:
    """The trace's records, oldest first."""
    page = trail.store.query(AuditQuery(trace_id=TRACE, newest_first=False, limit=1000))
    return page.records


def kinds(records: list[AuditRecord]) -> list[tuple[str, str]]:
    return [(r.event_type, r.outcome) for r in records]


async def test_a_write_and_its_records_commit_in_one_transaction(
    space: ContextSpace, trail: DurableAuditSink
) -> None:
    item = await space.put(SUPPORT, put("case", {"amount": 10}, expected_version=0))
    assert item.version == 1
    records = log_of(trail)
    assert kinds(records) == [("policy.decision", "allowed"), ("context.written", "written")]
    assert trail.stats.transactions == 1
    assert [r.seq for r in records] == [0, 1]
    assert records[0].log_time == records[1].log_time  # one group commit
    assert records[1].attribute_values()["version"] == 1


async def test_a_stale_write_leaves_its_decision_and_refusal_and_nothing_else(
    space: ContextSpace, trail: DurableAuditSink, store: SqlContextStore
) -> None:
    await space.put(SUPPORT, put("case", 1, expected_version=0))
    with pytest.raises(VersionConflict, match="current version is 1"):
        await space.put(SUPPORT, put("case", 2, expected_version=0))
    assert kinds(log_of(trail))[2:] == [
        ("policy.decision", "allowed"),
        ("context.written", "stale"),
    ]
    assert [v.version for v in store.history(trace_id=TRACE, key="case")] == [1]
    # The refused write's savepoint was undone, its trace revision too.
    after = await space.put(SUPPORT, put("case", 3, expected_version=1))
    assert (after.version, after.revision) == (2, 2)


async def test_concurrent_writers_share_commits_and_exactly_one_wins(
    space: ContextSpace, trail: DurableAuditSink, store: SqlContextStore
) -> None:
    await space.put(SUPPORT, put("case", 0, expected_version=0))
    before = trail.stats.transactions
    results = await asyncio.gather(
        *(space.put(SUPPORT, put("case", i, expected_version=1)) for i in range(12)),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, VersionConflict)]
    assert (len(won), len(lost)) == (1, 11)
    assert trail.stats.transactions - before < 12  # the writes shared group commits
    outcomes = [o for kind, o in kinds(log_of(trail)) if kind == "context.written"]
    assert sorted(outcomes) == ["stale"] * 11 + ["written"] * 2
    assert [v.version for v in store.history(trace_id=TRACE, key="case")] == [1, 2]


async def test_a_delete_of_a_missing_item_is_recorded_as_missing(
    space: ContextSpace, trail: DurableAuditSink
) -> None:
    with pytest.raises(NotFound):
        await space.delete(SUPPORT, TRACE, "nothing-here")
    assert kinds(log_of(trail)) == [("policy.decision", "allowed"), ("context.written", "missing")]


async def test_a_write_whose_records_cannot_be_made_is_undone(
    trail: DurableAuditSink, store: SqlContextStore
) -> None:
    naive = AuditEvent(type=EventType.CONTEXT_WRITTEN, caller_time=datetime(2026, 11, 24))
    good = AuditEvent(type=EventType.POLICY_DECISION, trace_id=TRACE)
    write = AuditedWrite(
        before=[good],
        apply=lambda tx: store_put(store, tx),
        after=lambda item: [naive],
        refused=lambda exc: [],
    )
    results = await asyncio.gather(
        trail.record_write(write),
        trail.record([AuditEvent(type=EventType.TASK_REQUESTED)]),
        return_exceptions=True,
    )
    assert isinstance(results[0], ValueError)
    assert not isinstance(results[1], BaseException)  # the rest of the batch committed
    assert store.history(trace_id=TRACE, key="case") == []
    assert log_of(trail) == []  # not even the decision: nothing of the write stayed


async def test_a_write_on_a_closed_trail_is_refused(
    space: ContextSpace, trail: DurableAuditSink, store: SqlContextStore
) -> None:
    trail.close()
    with pytest.raises(AuditUnavailable, match="shut down"):
        await space.put(SUPPORT, put("case", 1))
    assert store.history(trace_id=TRACE, key="case") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_nothing_is_written_while_the_database_is_locked_and_writes_resume(
    space: ContextSpace, trail: DurableAuditSink, store: SqlContextStore, db_url: str
) -> None:
    # A real outage: another process holds SQLite's write lock past the busy timeout.
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(AuditUnavailable):
            await space.put(SUPPORT, put("case", 1))
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()
    assert store.history(trace_id=TRACE, key="case") == []
    item = await space.put(SUPPORT, put("case", 2, expected_version=0))
    assert item.version == 1
    assert kinds(log_of(trail)) == [("policy.decision", "allowed"), ("context.written", "written")]


def test_a_store_refuses_a_transaction_on_another_database(
    store: SqlContextStore, tmp_path: object
) -> None:
    from gateway.store.database import migrate, open_engine

    other = open_engine(f"sqlite:///{tmp_path}/other.db")
    try:
        migrate(other)
        with other.begin() as conn, pytest.raises(TypeError, match="its own database"):
            store_put(store, conn)
    finally:
        other.dispose()
