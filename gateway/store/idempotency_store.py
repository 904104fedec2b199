"""SQL store of idempotency keys (`gateway.core.idempotency.IdempotencyStore`)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from gateway.core.idempotency import Claim, ClaimState, StoredOutcome
from gateway.core.models import CapabilityTarget, Payload, TaskError, TaskState, TaskUpdate
from gateway.core.names import parse_capability_ref
from gateway.store.database import run_transaction
from gateway.store.idempotency_tables import idempotency_keys as table


class SqlIdempotencyStore:
    """Idempotency keys in the gateway's database, shared by every replica."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(
        self, *, caller: str, key: str, request_hash: str, now: datetime, ttl: timedelta
    ) -> Claim:
        """Claims an unused or expired key in one transaction, or returns its claim."""
        mine = (table.c.caller == caller) & (table.c.key == key)
        values = {
            "caller": caller,
            "key": key,
            "request_hash": request_hash,
            "state": ClaimState.PENDING.value,
            "created_at": now,
            "expires_at": now + ttl,
        }

        def work(conn: Connection) -> Claim:
            conn.execute(sa.delete(table).where(mine, table.c.expires_at <= now))
            # ON CONFLICT DO NOTHING: of two replicas claiming at once, one inserts and
            # the other reads the winner's row below.
            inserted = conn.execute(self._insert_if_absent(values)).first()
            if inserted is not None:
                return Claim(new=True, request_hash=request_hash)
            row = conn.execute(sa.select(table).where(mine)).mappings().one()
            return _claim_of(row)

        return run_transaction(self._engine, work)

    def complete(self, *, caller: str, key: str, outcome: StoredOutcome) -> None:
        """Stores the outcome of the call that holds the key."""
        statement = (
            sa.update(table)
            .where(table.c.caller == caller, table.c.key == key)
            .values(
                state=ClaimState.DONE.value,
                task_id=outcome.task_id,
                trace_id=outcome.trace_id,
                target=str(outcome.target),
                outcome=json.dumps(_update_json(outcome.final), separators=(",", ":")),
            )
        )
        run_transaction(self._engine, lambda conn: conn.execute(statement))

    def release(self, *, caller: str, key: str) -> None:
        """Drops a pending claim (the call was refused before it was forwarded)."""
        statement = sa.delete(table).where(
            table.c.caller == caller,
            table.c.key == key,
            table.c.state == ClaimState.PENDING.value,
        )
        run_transaction(self._engine, lambda conn: conn.execute(statement))

    def purge_expired(self, *, now: datetime) -> int:
        """Deletes expired keys."""
        statement = sa.delete(table).where(table.c.expires_at <= now)
        return run_transaction(self._engine, lambda conn: conn.execute(statement).rowcount)

    def _insert_if_absent(self, values: dict[str, Any]) -> sa.Insert:
        # RETURNING says reliably whether the row went in (rowcount does not, everywhere).
        if self._engine.dialect.name == "postgresql":
            return (
                postgresql.insert(table)
                .values(values)
                .on_conflict_do_nothing()
                .returning(table.c.caller)
            )
        return (
            sqlite.insert(table).values(values).on_conflict_do_nothing().returning(table.c.caller)
        )


def _claim_of(row: RowMapping) -> Claim:
    state = ClaimState(row["state"])
    outcome = None
    if state is ClaimState.DONE and row["outcome"]:
        domain, name, version = parse_capability_ref(row["target"])
        outcome = StoredOutcome(
            task_id=row["task_id"],
            trace_id=row["trace_id"],
            target=CapabilityTarget(domain, name, version),
            final=_update_of(json.loads(row["outcome"])),
        )
    return Claim(new=False, request_hash=row["request_hash"], state=state, outcome=outcome)


def _update_json(update: TaskUpdate) -> dict[str, Any]:
    output = update.output
    return {
        "state": update.state.value,
        "message": update.message,
        "error": None
        if update.error is None
        else [update.error.code, update.error.message, update.error.retryable],
        "output": None
        if output is None
        else {
            "json": output.json if output.data is None else None,
            "data": base64.b64encode(output.data).decode() if output.data is not None else None,
            "content_type": output.content_type,
        },
    }


def _update_of(value: dict[str, Any]) -> TaskUpdate:
    output = value["output"]
    error = value["error"]
    return TaskUpdate(
        state=TaskState(value["state"]),
        message=value["message"],
        error=TaskError(*error) if error else None,
        output=None
        if output is None
        else Payload(
            json=output["json"],
            data=base64.b64decode(output["data"]) if output["data"] is not None else None,
            content_type=output["content_type"],
        ),
        final=True,
    )
