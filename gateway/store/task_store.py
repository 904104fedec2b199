"""SQL store of long-running tasks (`gateway.core.tasks.ports.TaskStore`).

Appends lock the task's row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's
writers hold the database lock from `BEGIN IMMEDIATE`), check the owner and the
state machine, then write the event and the new state in one transaction, so two
instances can never both append to one task. Adoption takes only rows no other
transaction holds (`FOR UPDATE SKIP LOCKED`), so replicas adopting at once split
the orphans instead of sharing them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from gateway.core.models import CapabilityTarget, Payload, Principal, TaskError, TaskState
from gateway.core.models import TaskUpdate as Update
from gateway.core.tasks.records import StoredEvent, StoredTask, TaskQuery, check_transition
from gateway.store.database import run_transaction
from gateway.store.task_tables import task_events, tasks

_UNFINISHED = tuple(s.value for s in TaskState if not s.terminal)


class SqlTaskStore:
    """Tasks and their events in the gateway's database, shared by every replica."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._locks = engine.dialect.name == "postgresql"

    def create(self, task: StoredTask, first: StoredEvent) -> StoredTask:
        """Stores a new task and its first event; an existing id is returned unchanged."""

        def work(conn: Connection) -> StoredTask:
            row = conn.execute(sa.select(tasks).where(tasks.c.task_id == task.task_id)).first()
            if row is not None:
                return _task_of(row._mapping)
            conn.execute(sa.insert(tasks).values(_task_row(task)))
            conn.execute(sa.insert(task_events).values(_event_row(first)))
            return task

        return run_transaction(self._engine, work)

    def append(
        self,
        task_id: str,
        update: Update,
        *,
        owner: str,
        now: datetime,
        endpoint: str = "",
        lease_ttl: timedelta | None = None,
    ) -> StoredEvent | None:
        """Appends an event if `owner` holds the unfinished task (see the protocol)."""

        def work(conn: Connection) -> StoredEvent | None:
            query = sa.select(tasks).where(tasks.c.task_id == task_id)
            if self._locks:
                query = query.with_for_update()
            row = conn.execute(query).mappings().first()
            if row is None or row["owner"] != owner or TaskState(row["state"]).terminal:
                return None
            checked = check_transition(TaskState(row["state"]), update)
            sequence = row["last_sequence"] + 1
            event = StoredEvent(
                task_id=task_id,
                sequence=sequence,
                state=checked.state,
                at=now,
                message=checked.message,
                output=checked.output,
                error=checked.error,
                final=checked.final,
            )
            conn.execute(sa.insert(task_events).values(_event_row(event)))
            values: dict[str, Any] = {
                "state": checked.state.value,
                "message": checked.message,
                "last_sequence": sequence,
                "updated_at": now,
            }
            if checked.output is not None:
                values["output"] = _payload_json(checked.output)
            if checked.error is not None:
                values["error"] = _error_json(checked.error)
            if endpoint:
                values["endpoint"] = endpoint
            if update.sequence:
                values["domain_sequence"] = update.sequence
            if checked.final:
                values["owner"] = ""
                values["lease_expires_at"] = None
            elif lease_ttl is not None:
                values["lease_expires_at"] = now + lease_ttl
            conn.execute(sa.update(tasks).where(tasks.c.task_id == task_id).values(values))
            return event

        return run_transaction(self._engine, work)

    def get(self, task_id: str) -> StoredTask | None:
        """The task, or None."""
        query = sa.select(tasks).where(tasks.c.task_id == task_id)
        row = run_transaction(
            self._engine, lambda conn: conn.execute(query).mappings().first(), read_only=True
        )
        return None if row is None else _task_of(row)

    def events(self, task_id: str, *, after: int, limit: int) -> list[StoredEvent]:
        """Events after `after`, in order."""
        query = (
            sa.select(task_events)
            .where(task_events.c.task_id == task_id, task_events.c.sequence > after)
            .order_by(task_events.c.sequence)
            .limit(limit)
        )
        rows = run_transaction(
            self._engine, lambda conn: conn.execute(query).mappings().all(), read_only=True
        )
        return [_event_of(r) for r in rows]

    def query(self, query: TaskQuery) -> list[StoredTask]:
        """Tasks matching the filters, newest first."""
        statement = sa.select(tasks).order_by(tasks.c.created_at.desc(), tasks.c.task_id)
        if query.states:
            statement = statement.where(tasks.c.state.in_([s.value for s in query.states]))
        if query.target_domain:
            statement = statement.where(tasks.c.target_domain == query.target_domain)
        if query.trace_id:
            statement = statement.where(tasks.c.trace_id == query.trace_id)
        if not query.unrestricted:
            statement = statement.where(
                sa.or_(
                    tasks.c.caller_domain.in_(query.visible_callers),
                    tasks.c.target_domain.in_(query.visible_targets),
                )
            )
        statement = statement.limit(query.limit)
        rows = run_transaction(
            self._engine, lambda conn: conn.execute(statement).mappings().all(), read_only=True
        )
        return [_task_of(r) for r in rows]

    def find_by_key(self, caller: str, key: str) -> StoredTask | None:
        """The task `caller` submitted with idempotency key `key`, or None."""
        query = sa.select(tasks).where(
            tasks.c.caller_domain == caller, tasks.c.idempotency_key == key
        )
        row = run_transaction(
            self._engine, lambda conn: conn.execute(query).mappings().first(), read_only=True
        )
        return None if row is None else _task_of(row)

    def adopt(
        self, *, owner: str, now: datetime, ttl: timedelta, own: bool, limit: int
    ) -> list[StoredTask]:
        """Leases unfinished orphans (and with `own` the owner's tasks) to `owner`."""
        orphaned = sa.or_(tasks.c.lease_expires_at.is_(None), tasks.c.lease_expires_at <= now)
        if own:
            orphaned = sa.or_(orphaned, tasks.c.owner == owner)
        select = (
            sa.select(tasks.c.task_id)
            .where(tasks.c.state.in_(_UNFINISHED), orphaned)
            .order_by(tasks.c.created_at)
            .limit(limit)
        )
        if self._locks:
            select = select.with_for_update(skip_locked=True)

        def work(conn: Connection) -> list[StoredTask]:
            ids = list(conn.execute(select).scalars())
            if not ids:
                return []
            conn.execute(
                sa.update(tasks)
                .where(tasks.c.task_id.in_(ids))
                .values(owner=owner, lease_expires_at=now + ttl)
            )
            rows = conn.execute(sa.select(tasks).where(tasks.c.task_id.in_(ids))).mappings()
            return [_task_of(r) for r in rows]

        return run_transaction(self._engine, work)

    def renew(self, *, owner: str, task_ids: Sequence[str], now: datetime, ttl: timedelta) -> int:
        """Extends `owner`'s lease on the listed unfinished tasks."""
        statement = (
            sa.update(tasks)
            .where(
                tasks.c.owner == owner,
                tasks.c.task_id.in_(list(task_ids)),
                tasks.c.state.in_(_UNFINISHED),
            )
            .values(lease_expires_at=now + ttl)
        )
        return run_transaction(self._engine, lambda conn: conn.execute(statement).rowcount)


def _task_row(task: StoredTask) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "trace_id": task.trace_id,
        "parent_task_id": task.parent_task_id,
        "caller_domain": task.caller.domain,
        "caller_agent": task.caller.agent,
        "target_domain": task.target.domain,
        "target_name": task.target.name,
        "target_version": task.target.version,
        "state": task.state.value,
        "message": task.message,
        "output": _payload_json(task.output),
        "error": _error_json(task.error),
        "idempotency_key": task.idempotency_key or None,
        "request_hash": task.request_hash,
        "deadline": task.deadline,
        "depth": task.depth,
        "call_path": json.dumps(list(task.call_path)),
        "endpoint": task.endpoint,
        "domain_sequence": task.domain_sequence,
        "last_sequence": task.last_sequence,
        "owner": task.owner,
        "lease_expires_at": task.lease_expires_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _task_of(row: RowMapping) -> StoredTask:
    return StoredTask(
        task_id=row["task_id"],
        trace_id=row["trace_id"],
        caller=Principal(row["caller_domain"], row["caller_agent"]),
        target=CapabilityTarget(row["target_domain"], row["target_name"], row["target_version"]),
        state=TaskState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        message=row["message"],
        output=_payload_of(row["output"]),
        error=_error_of(row["error"]),
        parent_task_id=row["parent_task_id"],
        deadline=row["deadline"],
        idempotency_key=row["idempotency_key"] or "",
        request_hash=row["request_hash"],
        depth=row["depth"],
        call_path=tuple(json.loads(row["call_path"])),
        endpoint=row["endpoint"],
        domain_sequence=row["domain_sequence"],
        last_sequence=row["last_sequence"],
        owner=row["owner"],
        lease_expires_at=row["lease_expires_at"],
    )


def _event_row(event: StoredEvent) -> dict[str, Any]:
    return {
        "task_id": event.task_id,
        "sequence": event.sequence,
        "state": event.state.value,
        "message": event.message,
        "output": _payload_json(event.output),
        "error": _error_json(event.error),
        "final": event.final,
        "at": event.at,
    }


def _event_of(row: RowMapping) -> StoredEvent:
    return StoredEvent(
        task_id=row["task_id"],
        sequence=row["sequence"],
        state=TaskState(row["state"]),
        at=row["at"],
        message=row["message"],
        output=_payload_of(row["output"]),
        error=_error_of(row["error"]),
        final=row["final"],
    )


def _payload_json(payload: Payload | None) -> str | None:
    if payload is None:
        return None
    if payload.data is not None:
        value: dict[str, Any] = {
            "data": base64.b64encode(payload.data).decode(),
            "content_type": payload.content_type,
        }
    else:
        value = {"json": dict(payload.json or {})}
    return json.dumps(value, separators=(",", ":"))


def _payload_of(text: str | None) -> Payload | None:
    if text is None:
        return None
    value = json.loads(text)
    if "data" in value:
        return Payload(data=base64.b64decode(value["data"]), content_type=value["content_type"])
    return Payload(json=value["json"])


def _error_json(error: TaskError | None) -> str | None:
    return None if error is None else json.dumps([error.code, error.message, error.retryable])


def _error_of(text: str | None) -> TaskError | None:
    return None if text is None else TaskError(*json.loads(text))
