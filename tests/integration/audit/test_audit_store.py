"""The SQL audit log on SQLite and PostgreSQL: positions, hashes, checkpoints, queries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core.audit_log import Checkpointer, pending
from gateway.core.audit_query import AuditQuery
from gateway.core.audit_record import GENESIS_CHAIN, chain_hash, leaf_hash_of
from gateway.core.checkpoint import open_checkpoint
from gateway.core.merkle import tree_hash
from gateway.core.signed_note import NoteSigner
from gateway.errors import InvalidRequest
from gateway.store.audit_store import SqlAuditStore

from .conftest import ORIGIN, T0, event


def fill(store: SqlAuditStore, count: int, batch: int = 7, **kwargs: object) -> None:
    for start in range(0, count, batch):
        items = [pending(event(i)) for i in range(start, min(count, start + batch))]
        store.append(items, now=T0 + timedelta(seconds=start), **kwargs)  # type: ignore[arg-type]


def test_appends_get_gap_free_positions_and_chained_hashes(store: SqlAuditStore) -> None:
    fill(store, 30)
    head = store.head()
    assert head.size == 30
    records = [store.record(i) for i in range(30)]
    chain = GENESIS_CHAIN
    for i, record in enumerate(records):
        assert record is not None
        assert record.seq == i
        assert record.leaf_hash == leaf_hash_of(record)
        chain = chain_hash(chain, record.leaf_hash)
        assert record.chain_hash == chain
    assert head.chain_hash == chain
    assert head.root() == tree_hash(store.leaf_hashes(30))
    assert store.record(30) is None


def test_records_round_trip_every_field(store: SqlAuditStore) -> None:
    item = pending(
        event(
            3,
            actor="finance/agent/payer",
            parent_task_id="parent",
            rule="p, finance, risk, score",
            policy_version=7,
            duration_us=1234,
            classifications=("restricted", "internal"),
            attributes={"ünï": "cödé ✓", "nested": {"b": [1, 2.5, None]}},
        )
    )
    result = store.append([item], now=T0)
    [record] = store.records_by_event([item.event_id])
    assert result.receipts[item.event_id].leaf_hash == record.leaf_hash
    assert record.actor == "finance/agent/payer"
    assert record.parent_span_id == "parent"
    assert record.policy_version == 7
    assert record.duration_us == 1234
    assert record.classifications == ("internal", "restricted")
    assert record.attribute_values() == {"ünï": "cödé ✓", "nested": {"b": [1, 2.5, None]}}
    assert record.caller_time == item.caller_time
    assert record.log_time == T0
    assert record.leaf_hash == leaf_hash_of(record)


def test_a_repeated_event_is_recorded_once(store: SqlAuditStore) -> None:
    first = pending(event(1))
    again = store.append([first], now=T0).receipts[first.event_id]
    other = pending(event(2))
    result = store.append([first, other, other], now=T0)
    assert result.appended == 1
    assert result.receipts[first.event_id] == again
    assert result.receipts[other.event_id].seq == 1
    assert store.head().size == 2


def test_checkpoints_every_n_records_are_signed(
    store: SqlAuditStore, checkpointer: Checkpointer, signer: NoteSigner
) -> None:
    fill(store, 35, batch=5, checkpointer=checkpointer)
    checkpoints = store.checkpoints()
    assert [c.size for c in checkpoints] == [5, 15, 25, 35]  # the first at once, then >= 10
    for stored in checkpoints:
        opened = open_checkpoint(stored.note, [signer.verifier], origin=ORIGIN)
        assert opened.size == stored.size
        assert opened.root_hash == stored.root_hash == tree_hash(store.leaf_hashes(stored.size))
        assert stored.signer == signer.verifier.vkey
    head = store.head()
    assert head.checkpoint_size == 35
    assert store.checkpoint() == checkpoints[-1]
    assert store.checkpoint(15) == checkpoints[1]
    assert store.checkpoint(16) is None


def test_a_forced_checkpoint_covers_the_tail(
    store: SqlAuditStore, checkpointer: Checkpointer
) -> None:
    fill(store, 12, batch=6, checkpointer=checkpointer)
    assert store.head().checkpoint_size == 6
    result = store.append([], now=T0, checkpointer=checkpointer, force_checkpoint=True)
    assert result.checkpoint is not None
    assert result.checkpoint.size == 12
    assert (
        store.append([], now=T0, checkpointer=checkpointer, force_checkpoint=True).checkpoint
        is None
    )


def test_query_filters_and_pages(store: SqlAuditStore) -> None:
    fill(store, 60)
    page = store.query(AuditQuery(limit=10))
    assert [r.seq for r in page.records] == list(range(59, 49, -1))
    assert page.next_cursor == 50
    assert page.log_size == 60
    second = store.query(AuditQuery(limit=10, cursor=page.next_cursor))
    assert [r.seq for r in second.records] == list(range(49, 39, -1))
    oldest = store.query(AuditQuery(limit=25, newest_first=False, cursor=49))
    assert [r.seq for r in oldest.records] == list(range(50, 60))
    assert oldest.next_cursor is None

    def seqs(**filters: object) -> list[int]:
        query = AuditQuery(limit=1000, newest_first=False, **filters)  # type: ignore[arg-type]
        return [r.seq for r in store.query(query).records]

    assert seqs(source_domain="finance") == [i for i in range(60) if i % 3 == 1]
    assert seqs(target_domain="finance", actor="risk") == [
        i for i in range(60) if i % 2 == 1 and i % 3 == 2
    ]
    assert seqs(decision="deny") == list(range(0, 60, 5))
    assert seqs(event_type="task.finished", outcome="completed") == list(range(1, 60, 2))
    assert seqs(trace_id="trace-3") == [12, 13, 14, 15]
    assert seqs(capability="nope") == []
    assert seqs(since=T0 + timedelta(seconds=14), until=T0 + timedelta(seconds=28)) == list(
        range(14, 28)
    )
    assert seqs(involving=frozenset({"support"})) == [i for i in range(60) if i % 3 == 0 or False]


def test_query_by_classification_and_scope(store: SqlAuditStore) -> None:
    items = [
        pending(event(0, classifications=("confidential",))),
        pending(event(1, classifications=("internal", "confidential"))),
        pending(event(2, classifications=("internal",))),
        pending(event(3, source_domain="x", target_domain="y")),
    ]
    store.append(items, now=T0)
    query = AuditQuery(newest_first=False, classification="confidential")
    assert [r.seq for r in store.query(query).records] == [0, 1]
    scoped = AuditQuery(newest_first=False).scoped_to(frozenset({"y"}))
    assert [r.seq for r in store.query(scoped).records] == [3]
    narrowed = scoped.scoped_to(frozenset({"risk"}))
    assert store.query(narrowed).records == []


def test_query_arguments_are_checked() -> None:
    with pytest.raises(InvalidRequest):
        AuditQuery(limit=0)
    with pytest.raises(InvalidRequest):
        AuditQuery(limit=100_000)
    with pytest.raises(InvalidRequest):
        AuditQuery(cursor=-1)
    with pytest.raises(InvalidRequest):
        AuditQuery(since=T0.replace(tzinfo=None))


def test_snapshot_streams_head_checkpoints_and_records(
    store: SqlAuditStore, checkpointer: Checkpointer
) -> None:
    fill(store, 23, checkpointer=checkpointer)
    items = list(store.snapshot(chunk=5))
    head, checkpoints, *records = items
    assert head.size == 23  # type: ignore[union-attr]
    assert [c.size for c in checkpoints] == [7, 21]  # type: ignore[union-attr]
    assert [r.seq for r in records] == list(range(23))  # type: ignore[union-attr]
