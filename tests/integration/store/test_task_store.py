"""The SQL task store on SQLite and PostgreSQL: events, fencing, adoption, queries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from gateway.core.models import CapabilityTarget, Payload, Principal, TaskError, TaskState
from gateway.core.models import TaskUpdate as Update
from gateway.core.tasks.records import InvalidTransition, StoredEvent, StoredTask, TaskQuery
from gateway.store.task_store import SqlTaskStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=10)


def _task(task_id: str, owner: str = "gw-1", **changes: object) -> tuple[StoredTask, StoredEvent]:
    values: dict[str, object] = {
        "task_id": task_id,
        "trace_id": "trace-" + task_id,
        "caller": Principal("support", "agent/x"),
        "target": CapabilityTarget("finance", "issue-refund", "1.0.0"),
        "state": TaskState.SUBMITTED,
        "created_at": NOW,
        "updated_at": NOW,
        "message": "accepted by the gateway",
        "call_path": ("finance/issue-refund",),
        "last_sequence": 1,
        "owner": owner,
        "lease_expires_at": NOW + TTL,
        "idempotency_key": "key-" + task_id,
        "request_hash": "h" * 64,
    }
    values.update(changes)
    task = StoredTask(**values)  # type: ignore[arg-type]
    return task, StoredEvent(task_id, 1, TaskState.SUBMITTED, NOW, "accepted by the gateway")


@pytest.fixture
def store(db_engine: Engine) -> SqlTaskStore:
    return SqlTaskStore(db_engine)


def test_a_task_round_trips_with_its_events(store: SqlTaskStore) -> None:
    store.create(*_task("t1"))
    store.append(
        "t1",
        Update(TaskState.WORKING, "started", sequence=1),
        owner="gw-1",
        now=NOW,
        endpoint="e:1",
    )
    store.append(
        "t1", Update(TaskState.INPUT_REQUIRED, "approve?", sequence=2), owner="gw-1", now=NOW
    )
    final = store.append(
        "t1",
        Update(
            TaskState.COMPLETED,
            "completed",
            output=Payload(data=b'{"ok":true}', content_type="application/json"),
            final=True,
            sequence=4,
        ),
        owner="gw-1",
        now=NOW,
    )
    assert final is not None
    assert final.sequence == 4
    stored = store.get("t1")
    assert stored is not None
    assert stored.state is TaskState.COMPLETED
    assert stored.output == Payload(data=b'{"ok":true}', content_type="application/json")
    assert stored.endpoint == "e:1"
    assert stored.domain_sequence == 4
    assert stored.owner == ""
    assert stored.lease_expires_at is None
    assert stored.call_path == ("finance/issue-refund",)
    assert stored.caller == Principal("support", "agent/x")
    events = store.events("t1", after=0, limit=10)
    assert [e.state for e in events] == [
        TaskState.SUBMITTED,
        TaskState.WORKING,
        TaskState.INPUT_REQUIRED,
        TaskState.COMPLETED,
    ]
    assert [e.sequence for e in store.events("t1", after=2, limit=10)] == [3, 4]


def test_creating_an_existing_id_changes_nothing(store: SqlTaskStore) -> None:
    first, event = _task("t1")
    store.create(first, event)
    again = store.create(_task("t1", message="other")[0], event)
    assert again.message == first.message


def test_only_the_owner_appends_and_nothing_follows_the_end(store: SqlTaskStore) -> None:
    store.create(*_task("t1"))
    assert store.append("t1", Update(TaskState.WORKING, "x"), owner="gw-2", now=NOW) is None
    failed = Update(TaskState.FAILED, "boom", error=TaskError("handler_error", "boom"), final=True)
    assert store.append("t1", failed, owner="gw-1", now=NOW) is not None
    assert store.append("t1", Update(TaskState.WORKING, "late"), owner="gw-1", now=NOW) is None
    stored = store.get("t1")
    assert stored is not None
    assert stored.error == TaskError("handler_error", "boom")
    assert stored.last_sequence == 2


def test_the_state_machine_is_enforced(store: SqlTaskStore) -> None:
    store.create(*_task("t1"))
    with pytest.raises(InvalidTransition):
        store.append("t1", Update(TaskState.COMPLETED, "not final"), owner="gw-1", now=NOW)
    assert len(store.events("t1", after=0, limit=10)) == 1


def test_adoption_takes_orphans_once(store: SqlTaskStore) -> None:
    store.create(*_task("held", owner="gw-1"))
    store.create(*_task("orphan", owner="gw-dead", lease_expires_at=NOW - timedelta(seconds=1)))
    store.create(*_task("done", owner=""))
    store.append("done", Update(TaskState.COMPLETED, "ok", final=True), owner="", now=NOW)
    adopted = store.adopt(owner="gw-2", now=NOW, ttl=TTL, own=False, limit=10)
    assert [t.task_id for t in adopted] == ["orphan"]
    assert adopted[0].owner == "gw-2"
    # gw-1 restarting takes its own tasks back at once, without waiting for the lease.
    own = store.adopt(owner="gw-1", now=NOW, ttl=TTL, own=True, limit=10)
    assert [t.task_id for t in own] == ["held"]
    assert store.adopt(owner="gw-3", now=NOW, ttl=TTL, own=False, limit=10) == []


def test_renewal_keeps_a_lease_and_expiry_frees_it(store: SqlTaskStore) -> None:
    store.create(*_task("t1", lease_expires_at=NOW + timedelta(seconds=1)))
    later = NOW + timedelta(seconds=5)
    assert store.renew(owner="gw-1", task_ids=["t1"], now=NOW, ttl=TTL) == 1
    assert store.adopt(owner="gw-2", now=later, ttl=TTL, own=False, limit=10) == []
    much_later = NOW + timedelta(seconds=30)
    assert [
        t.task_id for t in store.adopt(owner="gw-2", now=much_later, ttl=TTL, own=False, limit=10)
    ] == ["t1"]
    assert store.renew(owner="gw-1", task_ids=["t1"], now=much_later, ttl=TTL) == 0


def test_replicas_adopting_at_once_never_share_a_task(store: SqlTaskStore) -> None:
    expired = NOW - timedelta(seconds=1)
    for i in range(30):
        store.create(*_task(f"t{i:02d}", owner="gw-dead", lease_expires_at=expired))

    def adopt(owner: str) -> list[str]:
        return [t.task_id for t in store.adopt(owner=owner, now=NOW, ttl=TTL, own=False, limit=100)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(adopt, ["a", "b", "c", "d"]))
    taken = [task_id for result in results for task_id in result]
    assert sorted(taken) == [f"t{i:02d}" for i in range(30)]  # each exactly once


def test_queries_filter_and_scope(store: SqlTaskStore) -> None:
    store.create(*_task("t1"))
    store.create(*_task("t2", caller=Principal("cli"), created_at=NOW + timedelta(seconds=1)))
    store.create(*_task("t3", target=CapabilityTarget("risk", "score", "1.0.0"), trace_id="shared"))
    every = TaskQuery(unrestricted=True)
    assert [t.task_id for t in store.query(every)] == ["t2", "t1", "t3"]  # newest first
    assert [t.task_id for t in store.query(TaskQuery(unrestricted=True, trace_id="shared"))] == [
        "t3"
    ]
    assert {
        t.task_id for t in store.query(TaskQuery(unrestricted=True, target_domain="finance"))
    } == {
        "t1",
        "t2",
    }
    assert store.query(TaskQuery(unrestricted=True, states=(TaskState.COMPLETED,))) == []
    mine = store.query(TaskQuery(visible_callers=("cli",)))
    assert [t.task_id for t in mine] == ["t2"]
    overseen = store.query(TaskQuery(visible_callers=("cli",), visible_targets=("risk",)))
    assert {t.task_id for t in overseen} == {"t2", "t3"}
    assert store.find_by_key("support", "key-t1") is not None
    assert store.find_by_key("cli", "key-t1") is None
