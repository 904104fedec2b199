"""SQL store of the shared context space (`gateway.core.context.ports.ContextStore`).

Who wins a race: every write first takes its trace's next revision with an upsert on
`context_traces`, which row-locks the trace until commit, so the writes of one trace
run one after another on every backend and across replicas. The item row is then
updated only `WHERE version = <the version just read>` (row-level versioning): a
writer that read a version another transaction replaced updates nothing and reports
the conflict instead of overwriting. On PostgreSQL each write also sends
`NOTIFY fedgate_context, '<trace id>'`, delivered at commit, which wakes the Watch
streams of every replica.

`put` and `delete` run in the audit trail's transaction when given one (`within`), so
an item's version commits together with its audit records; the trail's writer has
locked the log's head by then, which also serializes writes across replicas.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from gateway.core.audited_write import Transaction
from gateway.core.context.items import ContextItem
from gateway.core.models import Classification
from gateway.errors import NotFound, PolicyDenied, VersionConflict
from gateway.store.context_tables import context_items as items
from gateway.store.context_tables import context_traces as traces
from gateway.store.context_tables import context_versions as versions
from gateway.store.database import run_transaction

NOTIFY_CHANNEL = "fedgate_context"
"""PostgreSQL channel told about every context write; the payload is the trace id."""

PURGE_BATCH = 1000
"""Most expired items one purge transaction removes."""


class SqlContextStore:
    """Context items in the gateway's database, shared by every replica."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        # A write's statements are built once, with bound parameters: building them
        # per write (`.values(...)` of a dozen literals) cost ~1 ms in SQLAlchemy,
        # on the audit writer's thread, where every write now runs.
        dialect = postgresql if self._postgres else sqlite
        self._next_revision_sql = (
            dialect.insert(traces)
            .values(trace_id=sa.bindparam("trace_id"), revision=1)
            .on_conflict_do_update(
                index_elements=[traces.c.trace_id], set_={"revision": traces.c.revision + 1}
            )
            .returning(traces.c.revision)
        )
        self._notify_sql = sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, sa.bindparam("trace_id")))
        self._current_sql = sa.select(items).where(
            items.c.trace_id == sa.bindparam("trace_id"), items.c.key == sa.bindparam("key")
        )
        # SET takes the parameters named as columns; the WHERE names differ from them.
        self._update_sql = sa.update(items).where(
            items.c.trace_id == sa.bindparam("at_trace_id"),
            items.c.key == sa.bindparam("at_key"),
            items.c.version == sa.bindparam("at_version"),
        )

    # --- writes -----------------------------------------------------------------

    def put(
        self,
        *,
        trace_id: str,
        key: str,
        value: Any,
        classification: Classification,
        owner: str,
        writer: str,
        expected_version: int | None,
        expires_at: datetime | None,
        now: datetime,
        within: Transaction | None = None,
    ) -> ContextItem:
        """Writes the next version of an item; see `ContextStore.put`."""
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

        def work(conn: Connection) -> ContextItem:
            revision = self._next_revision(conn, trace_id)
            row = self._current(conn, trace_id, key, now, purge=True)
            live = row is not None and not row["deleted"]
            current = row["version"] if live and row is not None else 0
            if expected_version is not None and expected_version != current:
                raise VersionConflict(_stale(trace_id, key, expected_version, current), current)
            if live and row is not None and row["owner"] != owner:
                raise _not_owner(trace_id, key, row["owner"], owner)
            values = {
                "trace_id": trace_id,
                "key": key,
                "version": (row["version"] if row is not None else 0) + 1,
                "revision": revision,
                "owner": owner,
                "classification": int(classification),
                "value": text,
                "deleted": False,
                "created_at": row["created_at"] if live and row is not None else now,
                "created_by": row["created_by"] if live and row is not None else writer,
                "written_at": now,
                "written_by": writer,
                "expires_at": expires_at,
            }
            self._write(conn, row, values)
            return _item_of(values)

        return self._write_in(within, work)

    def delete(
        self,
        *,
        trace_id: str,
        key: str,
        owner: str,
        writer: str,
        expected_version: int | None,
        now: datetime,
        within: Transaction | None = None,
    ) -> ContextItem:
        """Writes a tombstone version; see `ContextStore.delete`."""

        def work(conn: Connection) -> ContextItem:
            revision = self._next_revision(conn, trace_id)
            row = self._current(conn, trace_id, key, now, purge=True)
            if row is None or row["deleted"]:
                raise NotFound(f"context item {key!r} does not exist in trace {trace_id}")
            if expected_version is not None and expected_version != row["version"]:
                raise VersionConflict(
                    _stale(trace_id, key, expected_version, row["version"]), row["version"]
                )
            if row["owner"] != owner:
                raise _not_owner(trace_id, key, row["owner"], owner)
            values = {
                **row,
                "version": row["version"] + 1,
                "revision": revision,
                "value": None,
                "deleted": True,
                "written_at": now,
                "written_by": writer,
            }
            self._write(conn, row, values)
            return _item_of(values)

        return self._write_in(within, work)

    def purge_expired(self, *, now: datetime) -> int:
        """Deletes expired items and their versions, trace by trace; returns how many."""

        def work(conn: Connection) -> int:
            expired = conn.execute(
                sa.select(items.c.trace_id, items.c.key)
                .where(items.c.expires_at <= now)
                .limit(PURGE_BATCH)
            ).all()
            by_trace: dict[str, list[str]] = defaultdict(list)
            for trace_id, key in expired:
                by_trace[trace_id].append(key)
            purged = 0
            for trace_id, keys in by_trace.items():
                # The trace's lock: a writer refreshing one of these items right now
                # either commits first (and the expiry check below spares it) or waits.
                self._next_revision(conn, trace_id)
                gone = (
                    conn.execute(
                        sa.delete(items)
                        .where(
                            items.c.trace_id == trace_id,
                            items.c.key.in_(keys),
                            items.c.expires_at <= now,
                        )
                        .returning(items.c.key)
                    )
                    .scalars()
                    .all()
                )
                if gone:
                    conn.execute(
                        sa.delete(versions).where(
                            versions.c.trace_id == trace_id, versions.c.key.in_(gone)
                        )
                    )
                purged += len(gone)
            return purged

        return run_transaction(self._engine, work)

    # --- reads ------------------------------------------------------------------

    def get(
        self, *, trace_id: str, key: str, version: int = 0, now: datetime
    ) -> ContextItem | None:
        """The latest live version, or the given version of a live item; else None."""

        def work(conn: Connection) -> ContextItem | None:
            row = self._current(conn, trace_id, key, now)
            if row is None or row["deleted"]:
                return None
            if version == 0 or version == row["version"]:
                return _item_of(row)
            old = (
                conn.execute(
                    sa.select(versions).where(
                        versions.c.trace_id == trace_id,
                        versions.c.key == key,
                        versions.c.version == version,
                    )
                )
                .mappings()
                .first()
            )
            return None if old is None or old["deleted"] else _item_of(old)

        return run_transaction(self._engine, work, read_only=True)

    def list_items(self, *, trace_id: str, prefix: str = "", now: datetime) -> list[ContextItem]:
        """The live items of a trace whose key starts with `prefix`, by key."""
        query = sa.select(items).where(
            items.c.trace_id == trace_id,
            items.c.deleted.is_(False),
            sa.or_(items.c.expires_at.is_(None), items.c.expires_at > now),
        )
        if prefix:
            query = query.where(items.c.key.startswith(prefix, autoescape=True))
        query = query.order_by(items.c.key)
        return run_transaction(
            self._engine,
            lambda conn: [_item_of(r) for r in conn.execute(query).mappings()],
            read_only=True,
        )

    def history(self, *, trace_id: str, key: str) -> list[ContextItem]:
        """Every stored version of an item, oldest first."""
        query = (
            sa.select(versions)
            .where(versions.c.trace_id == trace_id, versions.c.key == key)
            .order_by(versions.c.version)
        )
        return run_transaction(
            self._engine,
            lambda conn: [_item_of(r) for r in conn.execute(query).mappings()],
            read_only=True,
        )

    def changes(self, *, trace_id: str, after_revision: int, limit: int) -> list[ContextItem]:
        """Versions of a trace written after `after_revision`, in revision order."""
        query = (
            sa.select(versions)
            .where(versions.c.trace_id == trace_id, versions.c.revision > after_revision)
            .order_by(versions.c.revision)
            .limit(limit)
        )
        return run_transaction(
            self._engine,
            lambda conn: [_item_of(r) for r in conn.execute(query).mappings()],
            read_only=True,
        )

    # --- parts ------------------------------------------------------------------

    def _write_in(
        self, within: Transaction | None, work: Callable[[Connection], ContextItem]
    ) -> ContextItem:
        """Runs a write in the given transaction (the audit trail's), else in its own."""
        if within is None:
            return run_transaction(self._engine, work)
        if not isinstance(within, Connection) or within.engine.url != self._engine.url:
            raise TypeError("a context write can only join a transaction on its own database")
        return work(within)

    def _next_revision(self, conn: Connection, trace_id: str) -> int:
        params = {"trace_id": trace_id}
        revision: int = conn.execute(self._next_revision_sql, params).scalar_one()
        if self._postgres:
            conn.execute(self._notify_sql, params)
        return revision

    def _current(
        self, conn: Connection, trace_id: str, key: str, now: datetime, *, purge: bool = False
    ) -> RowMapping | None:
        row = conn.execute(self._current_sql, {"trace_id": trace_id, "key": key}).mappings().first()
        if row is not None and row["expires_at"] is not None and row["expires_at"] <= now:
            # Expired but not purged yet: gone for readers, and a new write starts over.
            if purge:
                conn.execute(
                    sa.delete(versions).where(
                        versions.c.trace_id == trace_id, versions.c.key == key
                    )
                )
                conn.execute(
                    sa.delete(items).where(items.c.trace_id == trace_id, items.c.key == key)
                )
            return None
        return row

    def _write(self, conn: Connection, row: RowMapping | None, values: dict[str, Any]) -> None:
        if row is None:
            conn.execute(items.insert(), values)
        else:
            updated = conn.execute(
                self._update_sql,
                {
                    **values,
                    "at_trace_id": values["trace_id"],
                    "at_key": values["key"],
                    "at_version": row["version"],
                },
            ).rowcount
            if updated != 1:
                # Unreachable while the trace lock holds; kept as the last line of defense.
                raise VersionConflict(
                    f"context item {values['key']!r} changed concurrently", row["version"]
                )
        conn.execute(versions.insert(), values)


def _not_owner(trace_id: str, key: str, owner: str, writer: str) -> PolicyDenied:
    return PolicyDenied(
        f"{writer} may not change context item {key!r} of trace {trace_id}: "
        f"it is owned by {owner!r}, and only its owner writes or deletes it"
    )


def _stale(trace_id: str, key: str, expected: int, current: int) -> str:
    if current == 0:
        return (
            f"stale write of context item {key!r} in trace {trace_id}: expected version "
            f"{expected}, but the item does not exist (current version 0)"
        )
    return (
        f"stale write of context item {key!r} in trace {trace_id}: expected version "
        f"{expected}, current version is {current}"
    )


def _item_of(row: RowMapping | dict[str, Any]) -> ContextItem:
    value = row["value"]
    return ContextItem(
        trace_id=row["trace_id"],
        key=row["key"],
        version=row["version"],
        owner=row["owner"],
        classification=Classification(row["classification"]),
        value=None if value is None else json.loads(value),
        revision=row["revision"],
        written_at=row["written_at"],
        written_by=row["written_by"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        expires_at=row["expires_at"],
        deleted=bool(row["deleted"]),
    )
