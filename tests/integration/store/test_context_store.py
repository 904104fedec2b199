"""The context store on SQLite and PostgreSQL: versions, conflicts, expiry, changes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gateway.core.models import Classification
from gateway.errors import NotFound, PolicyDenied, VersionConflict
from gateway.store.context_store import SqlContextStore
from gateway.store.database import open_engine

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TRACE = "t1"


@pytest.fixture
def store(db_engine: Engine) -> SqlContextStore:
    return SqlContextStore(db_engine)


def put(
    store: SqlContextStore,
    key: str = "case",
    value: Any = None,
    *,
    expected: int | None = None,
    owner: str = "support",
    now: datetime = NOW,
    ttl: timedelta | None = timedelta(hours=1),
    trace: str = TRACE,
) -> Any:
    return store.put(
        trace_id=trace,
        key=key,
        value={"n": 1} if value is None else value,
        classification=Classification.CONFIDENTIAL,
        owner=owner,
        writer=f"{owner}/agent/intake",
        expected_version=expected,
        expires_at=None if ttl is None else now + ttl,
        now=now,
    )


def test_versions_start_at_one_and_grow_by_one(store: SqlContextStore) -> None:
    first = put(store, value={"n": 1}, expected=0)
    second = put(store, value={"n": 2}, expected=1)
    assert (first.version, second.version) == (1, 2)
    assert second.revision > first.revision
    assert second.created_by == "support/agent/intake"
    latest = store.get(trace_id=TRACE, key="case", now=NOW)
    assert latest is not None
    assert latest.value == {"n": 2}
    old = store.get(trace_id=TRACE, key="case", version=1, now=NOW)
    assert old is not None
    assert old.value == {"n": 1}
    assert store.get(trace_id=TRACE, key="case", version=7, now=NOW) is None
    assert [i.version for i in store.history(trace_id=TRACE, key="case")] == [1, 2]


def test_stale_write_names_the_current_version(store: SqlContextStore) -> None:
    put(store, expected=0)
    put(store, expected=1)
    with pytest.raises(VersionConflict, match="current version is 2") as raised:
        put(store, expected=1)
    assert raised.value.current_version == 2
    with pytest.raises(VersionConflict, match="current version is 2"):
        put(store, expected=0)  # create-only over an existing item
    with pytest.raises(VersionConflict, match="does not exist"):
        put(store, key="other", expected=3)
    assert [i.version for i in store.history(trace_id=TRACE, key="case")] == [1, 2]


def test_only_the_owner_writes_an_existing_item(store: SqlContextStore) -> None:
    put(store, owner="support")
    with pytest.raises(PolicyDenied, match="owned by 'support'"):
        put(store, owner="risk")


def test_delete_writes_a_tombstone_and_a_new_item_continues_the_versions(
    store: SqlContextStore,
) -> None:
    put(store)
    with pytest.raises(PolicyDenied):
        store.delete(
            trace_id=TRACE, key="case", owner="risk", writer="risk", expected_version=None, now=NOW
        )
    gone = store.delete(
        trace_id=TRACE, key="case", owner="support", writer="support", expected_version=1, now=NOW
    )
    assert (gone.version, gone.deleted, gone.value) == (2, True, None)
    assert store.get(trace_id=TRACE, key="case", now=NOW) is None
    assert store.list_items(trace_id=TRACE, now=NOW) == []
    with pytest.raises(NotFound):
        store.delete(
            trace_id=TRACE,
            key="case",
            owner="support",
            writer="support",
            expected_version=None,
            now=NOW,
        )
    again = put(store, expected=0)
    assert again.version == 3  # never reuses a version: no ABA for expected versions


def test_list_by_prefix_in_key_order(store: SqlContextStore) -> None:
    for key in ("case/notes", "case/main", "score", "case_x"):
        put(store, key=key)
    put(store, key="case/other-trace", trace="t2")
    keys = [i.key for i in store.list_items(trace_id=TRACE, prefix="case/", now=NOW)]
    assert keys == ["case/main", "case/notes"]
    assert len(store.list_items(trace_id=TRACE, now=NOW)) == 4


def test_expired_items_are_invisible_and_purged(store: SqlContextStore) -> None:
    put(store, key="short", ttl=timedelta(seconds=5))
    put(store, key="long", ttl=timedelta(hours=1))
    put(store, key="forever", ttl=None)
    later = NOW + timedelta(seconds=6)
    assert store.get(trace_id=TRACE, key="short", now=later) is None
    assert [i.key for i in store.list_items(trace_id=TRACE, now=later)] == ["forever", "long"]
    assert store.purge_expired(now=later) == 1
    assert store.history(trace_id=TRACE, key="short") == []
    assert store.purge_expired(now=later) == 0
    # An expired key starts over at version 1 for a new writer.
    put(store, key="long", ttl=timedelta(seconds=1), now=later + timedelta(hours=1))
    assert [i.version for i in store.history(trace_id=TRACE, key="long")] == [1]


def test_changes_follow_the_trace_revision(store: SqlContextStore) -> None:
    a = put(store, key="a")
    b = put(store, key="b")
    a2 = put(store, key="a")
    changes = store.changes(trace_id=TRACE, after_revision=0, limit=10)
    assert [(c.key, c.version) for c in changes] == [("a", 1), ("b", 1), ("a", 2)]
    assert [c.revision for c in changes] == [a.revision, b.revision, a2.revision]
    resumed = store.changes(trace_id=TRACE, after_revision=b.revision, limit=10)
    assert [(c.key, c.version) for c in resumed] == [("a", 2)]
    assert len(store.changes(trace_id=TRACE, after_revision=0, limit=2)) == 2


@pytest.fixture
def engines(db_url: str, db_engine: Engine) -> Iterator[list[Engine]]:
    # Separate engines stand for separate gateway replicas on one database.
    extra = [open_engine(db_url) for _ in range(3)]
    yield [db_engine, *extra]
    for engine in extra:
        engine.dispose()


def test_concurrent_writers_from_one_version_exactly_one_wins(engines: list[Engine]) -> None:
    stores = [SqlContextStore(e) for e in engines]
    put(stores[0], value={"writer": "seed"}, expected=0)
    rounds = 5
    winners: list[tuple[int, int]] = []
    conflicts: list[int] = []
    lock = threading.Lock()

    def writer(index: int, barrier: threading.Barrier) -> None:
        store = stores[index % len(stores)]
        for _ in range(rounds):
            current = store.get(trace_id=TRACE, key="case", now=NOW)
            assert current is not None
            barrier.wait()
            try:
                written = put(store, value={"writer": index}, expected=current.version)
            except VersionConflict as exc:
                with lock:
                    conflicts.append(exc.current_version)
            else:
                with lock:
                    winners.append((current.version, written.version))
            barrier.wait()

    writers = 8
    barrier = threading.Barrier(writers)
    threads = [threading.Thread(target=writer, args=(i, barrier)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Every round all writers read the same version; exactly one write from it wins.
    assert sorted(winners) == [(v, v + 1) for v in range(1, rounds + 1)]
    assert len(conflicts) == rounds * (writers - 1)
    history = stores[0].history(trace_id=TRACE, key="case")
    assert [i.version for i in history] == list(range(1, rounds + 2))
