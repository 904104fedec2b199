"""The durable writer: group commit, strict receipts, failing closed and recovering."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from gateway.audit.outside import CheckpointDirectory
from gateway.audit.writer import DurableAuditSink
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_log import Checkpointer
from gateway.core.checkpoint import open_checkpoint
from gateway.core.signed_note import NoteSigner
from gateway.errors import AuditUnavailable
from gateway.store.audit_store import SqlAuditStore

from .conftest import ORIGIN, event


async def test_record_returns_receipts_once_committed(store: SqlAuditStore) -> None:
    sink = DurableAuditSink(store)
    try:
        events = [event(i) for i in range(3)]
        receipts = await sink.record(events)
        assert [r.seq for r in receipts] == [0, 1, 2]
        assert [r.event_id for r in receipts] == [e.event_id for e in events]
        stored = store.records_by_event([e.event_id for e in events])
        assert [r.leaf_hash for r in stored] == [r.leaf_hash for r in receipts]
        assert await sink.record([]) == []
    finally:
        sink.close()


async def test_concurrent_callers_share_transactions(store: SqlAuditStore) -> None:
    sink = DurableAuditSink(store, max_batch=64)
    try:
        results = await asyncio.gather(*(sink.record([event(i)]) for i in range(300)))
        seqs = sorted(r[0].seq for r in results)
        assert seqs == list(range(300))
        assert sink.stats.transactions < 300  # group commit: several events per transaction
        assert sink.stats.largest_batch <= 64
        assert store.head().size == 300
    finally:
        sink.close()


async def test_close_writes_what_is_queued_and_checkpoints_the_tail(
    store: SqlAuditStore, tmp_path: Path
) -> None:
    signer = NoteSigner.generate(ORIGIN)
    outside = CheckpointDirectory(tmp_path / "checkpoints")
    sink = DurableAuditSink(
        store,
        checkpointer=Checkpointer(ORIGIN, signer, every_records=1000, every_seconds=3600),
        outside=outside,
    )
    await sink.record([event(0)])  # the first record is checkpointed at once
    await sink.record([event(1), event(2)])
    sink.close()
    assert store.head().size == 3
    assert [c.size for c in store.checkpoints()] == [1, 3]
    copies = outside.read_all()
    assert [open_checkpoint(c.note, [signer.verifier]).size for c in copies] == [1, 3]
    with pytest.raises(AuditUnavailable, match="shut down"):
        await sink.record([event(3)])


async def test_checkpoints_every_second_while_idle(store: SqlAuditStore) -> None:
    signer = NoteSigner.generate(ORIGIN)
    sink = DurableAuditSink(
        store, checkpointer=Checkpointer(ORIGIN, signer, every_records=1000, every_seconds=0.2)
    )
    try:
        await sink.record([event(0)])
        await sink.record([event(1)])
        for _ in range(100):
            if store.head().checkpoint_size == 2:
                break
            await asyncio.sleep(0.05)
        assert store.head().checkpoint_size == 2
    finally:
        sink.close()


async def test_relaxed_mode_does_not_wait(store: SqlAuditStore) -> None:
    sink = DurableAuditSink(store, strict=False)
    assert await sink.record([event(0)]) == []
    sink.close()
    assert store.head().size == 1


async def test_an_event_with_a_naive_time_fails_alone(store: SqlAuditStore) -> None:
    sink = DurableAuditSink(store)
    try:
        bad = AuditEvent(
            type=EventType.TASK_REQUESTED, caller_time=event(0).caller_time.replace(tzinfo=None)
        )
        results = await asyncio.gather(
            sink.record([bad]), sink.record([event(1)]), return_exceptions=True
        )
        assert isinstance(results[0], ValueError)
        assert not isinstance(results[1], BaseException)
    finally:
        sink.close()


class FlakyStore(SqlAuditStore):
    """Fails like an unreachable database while `down` is set."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.down = threading.Event()

    def append(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def, override]
        if self.down.is_set():
            from gateway.errors import StoreUnavailable

            raise StoreUnavailable("the database is unavailable: connection refused")
        return super().append(*args, **kwargs)  # type: ignore[arg-type]


async def test_fails_closed_while_the_store_is_down_and_recovers(engine: Engine) -> None:
    store = FlakyStore(engine)
    sink = DurableAuditSink(store)
    try:
        await sink.record([event(0)])
        store.down.set()
        with pytest.raises(AuditUnavailable, match="unavailable"):
            await sink.record([event(1)])
        assert sink.stats.failed_transactions == 1
        store.down.clear()
        receipts = await sink.record([event(2)])
        assert receipts[0].seq == 1  # no gap: the failed event was never written
    finally:
        sink.close()


class GatedStore(FlakyStore):
    """A `FlakyStore` whose first transaction waits for `release` once it has begun."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.begun = threading.Event()
        self.release = threading.Event()
        self._first = True

    def append(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def, override]
        if self._first:
            self._first = False
            self.begun.set()
            self.release.wait(timeout=30)
            return SqlAuditStore.append(self, *args, **kwargs)  # type: ignore[arg-type]
        return super().append(*args, **kwargs)


async def test_callers_are_answered_even_when_the_next_transaction_fails(engine: Engine) -> None:
    # Under load a transaction's callers are answered once the next batch is on its
    # way; if that next transaction fails, the first one's callers must still get
    # their receipts (they are durable), and only the next batch's callers an error.
    store = GatedStore(engine)
    sink = DurableAuditSink(store)
    try:
        first = asyncio.create_task(sink.record([event(0)]))
        assert await asyncio.to_thread(store.begun.wait, 10)
        later = [asyncio.create_task(sink.record([event(i)])) for i in range(1, 101)]
        for _ in range(1000):  # bounded: the 100 requests are queued behind the first
            if sink._queue.qsize() >= 100:
                break
            await asyncio.sleep(0.01)
        assert sink._queue.qsize() >= 100
        store.down.set()
        store.release.set()
        receipts = await asyncio.wait_for(first, 10)
        assert [r.seq for r in receipts] == [0]
        results = await asyncio.gather(*later, return_exceptions=True)
        assert all(isinstance(r, AuditUnavailable) for r in results)
        assert store.head().size == 1
    finally:
        store.release.set()
        sink.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_locked_sqlite_database_fails_closed_then_recovers(
    store: SqlAuditStore, db_url: str
) -> None:
    # A real outage: another process holds SQLite's write lock past the busy timeout.
    sink = DurableAuditSink(store)
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        await sink.record([event(0)])
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(AuditUnavailable):
            await sink.record([event(1)])
        blocker.execute("ROLLBACK")
        receipts = await sink.record([event(2)])
        assert receipts[0].seq == 1
    finally:
        blocker.close()
        sink.close()
