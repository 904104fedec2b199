"""`SqlPolicyStore`: the shared policy's rules, version and change log (SQLAlchemy Core).

Every change runs in one transaction that locks the version row (`FOR UPDATE` on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serializes writers), applies the
rule changes, bumps the version by one, appends to the change log and, on
PostgreSQL, queues `NOTIFY fedgate_policy, '<version>'`, which other replicas
receive when the transaction commits. A request that changes nothing bumps
nothing and logs nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from gateway.core.policy.ports import PolicyChange, PolicySet
from gateway.core.policy.rules import ARITY, PolicyRule, format_rules, parse_rules
from gateway.store.database import run_transaction
from gateway.store.policy_tables import RULE_VALUES, casbin_rules, policy_changes, policy_version

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "fedgate_policy"
"""PostgreSQL notification channel; the payload is the new version number."""

_CHUNK = 500
_FETCH_BATCH = 5_000
# Rows per INSERT/DELETE statement: well under SQLite's 32766 bound parameters.

_VERSION_ROW = policy_version.c.id == 1
_RULE_COLUMNS = (casbin_rules.c.ptype, *(casbin_rules.c[v] for v in RULE_VALUES))
_USED_COLUMNS = _RULE_COLUMNS[: 1 + max(ARITY.values())]
# What a full load reads: no rule type uses v4 and v5 (kept for Casbin's usual layout).


class SqlPolicyStore:
    """The `PolicyStore` on SQLite or PostgreSQL (an engine from `open_engine`, migrated)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        query = sa.select(*_USED_COLUMNS).order_by(casbin_rules.c.id)
        self._load_sql = str(query.compile(dialect=engine.dialect))
        columns = ", ".join(c.name for c in (casbin_rules.c.id, *_USED_COLUMNS))
        self._load_json_sql = (
            f"SELECT json_group_array(json_array({columns})) FROM {casbin_rules.name}"
        )

    @property
    def engine(self) -> Engine:
        """The engine the store uses."""
        return self._engine

    # --- reads ----------------------------------------------------------------

    def current_version(self) -> int:
        """The stored policy's version (0 before the first seed)."""
        statement = sa.select(policy_version.c.version).where(_VERSION_ROW)
        return int(
            run_transaction(
                self._engine, lambda c: c.execute(statement).scalar_one(), read_only=True
            )
        )

    def load(self) -> PolicySet:
        """Every rule in insertion order, and their version, from one snapshot."""

        def work(conn: Connection) -> PolicySet:
            version = conn.execute(sa.select(policy_version.c.version).where(_VERSION_ROW))
            return PolicySet(int(version.scalar_one()), tuple(_rules_of(self._all_rows(conn))))

        return run_transaction(self._engine, work, read_only=True)

    def changes(self, *, since: int = 0, limit: int = 100) -> list[PolicyChange]:
        """The change log after version `since`, oldest first, at most `limit` entries."""
        statement = (
            sa.select(policy_changes)
            .where(policy_changes.c.version > since)
            .order_by(policy_changes.c.version)
            .limit(limit)
        )

        def work(conn: Connection) -> list[PolicyChange]:
            return [
                PolicyChange(
                    version=int(row.version),
                    actor=row.actor,
                    kind=row.kind,
                    added=tuple(parse_rules(row.added)),
                    removed=tuple(parse_rules(row.removed)),
                    changed_at=row.changed_at,
                )
                for row in conn.execute(statement)
            ]

        return run_transaction(self._engine, work, read_only=True)

    def _all_rows(self, conn: Connection) -> list[Any]:
        # 200k rows at 100k rules: read through the driver's own cursor, in the same
        # transaction, since building SQLAlchemy Row objects would triple the time.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if not self._postgres:
                return self._all_rows_sqlite(cursor)
            rows: list[Any] = []
            cursor.execute(self._load_sql)
            # Fetched in batches, so the driver never holds the interpreter for long.
            while batch := cursor.fetchmany(_FETCH_BATCH):
                rows.extend(batch)
            return rows
        finally:
            cursor.close()

    def _all_rows_sqlite(self, cursor: Any) -> list[Any]:
        # The sqlite3 driver lets go of the interpreter lock around every row it steps
        # to; while another thread decides flat out, each row then waits for the lock
        # again (a reload took over a minute instead of a second). One aggregate row
        # holding every rule as JSON is a single step; ids restore insertion order.
        cursor.execute(self._load_json_sql)
        (text,) = cursor.fetchone()
        rows = json.loads(text)
        rows.sort(key=lambda row: row[0])
        return [row[1:] for row in rows]

    # --- changes --------------------------------------------------------------

    def add(
        self, rules: Sequence[PolicyRule], *, actor: str, now: datetime, kind: str = "add"
    ) -> PolicyChange:
        """Adds the rules that are missing; logs them as `kind` (`add` or `import`)."""

        def work(conn: Connection) -> PolicyChange:
            current = self._lock_version(conn)
            added = self._insert(conn, rules)
            return self._record(conn, current, kind, actor, now, added, ())

        return run_transaction(self._engine, work)

    def remove(self, rules: Sequence[PolicyRule], *, actor: str, now: datetime) -> PolicyChange:
        """Removes the rules that exist."""

        def work(conn: Connection) -> PolicyChange:
            current = self._lock_version(conn)
            removed = self._delete(conn, rules)
            return self._record(conn, current, "remove", actor, now, (), removed)

        return run_transaction(self._engine, work)

    def replace(self, rules: Sequence[PolicyRule], *, actor: str, now: datetime) -> PolicyChange:
        """Makes the stored rules exactly `rules` (one version, one log entry)."""

        def work(conn: Connection) -> PolicyChange:
            current = self._lock_version(conn)
            wanted = dict.fromkeys(rules)
            existing = set(_rules_of(conn.execute(sa.select(*_USED_COLUMNS)).all()))
            removed = self._delete(conn, [r for r in existing if r not in wanted])
            added = self._insert(conn, [r for r in wanted if r not in existing])
            return self._record(conn, current, "replace", actor, now, added, removed)

        return run_transaction(self._engine, work)

    def seed(
        self, rules: Sequence[PolicyRule], *, actor: str, now: datetime
    ) -> PolicyChange | None:
        """Stores `rules` as the first version if the store was never seeded, else None."""

        def work(conn: Connection) -> PolicyChange | None:
            current = self._lock_version(conn)
            if current != 0:
                return None
            added = self._insert(conn, rules)
            return self._record(conn, current, "seed", actor, now, added, (), always=True)

        return run_transaction(self._engine, work)

    # --- helpers --------------------------------------------------------------

    def _lock_version(self, conn: Connection) -> int:
        statement = sa.select(policy_version.c.version).where(_VERSION_ROW).with_for_update()
        return int(conn.execute(statement).scalar_one())

    def _record(
        self,
        conn: Connection,
        current: int,
        kind: str,
        actor: str,
        now: datetime,
        added: Sequence[PolicyRule],
        removed: Sequence[PolicyRule],
        *,
        always: bool = False,
    ) -> PolicyChange:
        if not (added or removed or always):
            return PolicyChange(current, actor, kind, (), (), None)
        version = current + 1
        conn.execute(
            sa.update(policy_version).where(_VERSION_ROW).values(version=version, changed_at=now)
        )
        conn.execute(
            sa.insert(policy_changes).values(
                version=version,
                actor=actor,
                kind=kind,
                added=format_rules(added),
                removed=format_rules(removed),
                changed_at=now,
            )
        )
        if self._postgres:
            conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, str(version))))
        return PolicyChange(version, actor, kind, tuple(added), tuple(removed), now)

    def _insert(self, conn: Connection, rules: Iterable[PolicyRule]) -> list[PolicyRule]:
        wanted = list(dict.fromkeys(rules))
        if not wanted:
            return []
        insert = postgresql.insert if self._postgres else sqlite.insert
        statement = (
            insert(casbin_rules)
            .on_conflict_do_nothing(index_elements=["ptype", *RULE_VALUES])
            .returning(*_RULE_COLUMNS)
        )
        # One executemany: SQLAlchemy batches it into multi-row INSERTs ("insertmanyvalues")
        # and returns only the rows that were new (conflicts insert and return nothing).
        inserted = set(_rules_of(conn.execute(statement, [_row_of(r) for r in wanted]).all()))
        return [rule for rule in wanted if rule in inserted]

    def _delete(self, conn: Connection, rules: Iterable[PolicyRule]) -> list[PolicyRule]:
        wanted = list(dict.fromkeys(rules))
        key = sa.tuple_(*_RULE_COLUMNS)
        deleted: set[PolicyRule] = set()
        for chunk in _chunks(wanted):
            values = [tuple(_row_of(rule).values()) for rule in chunk]
            statement = sa.delete(casbin_rules).where(key.in_(values)).returning(*_RULE_COLUMNS)
            deleted.update(_rules_of(conn.execute(statement).all()))
        return [rule for rule in wanted if rule in deleted]


def _row_of(rule: PolicyRule) -> dict[str, Any]:
    padded = (*rule.values, *("",) * (len(RULE_VALUES) - len(rule.values)))
    return {"ptype": rule.ptype, **dict(zip(RULE_VALUES, padded, strict=True))}


def _rules_of(rows: Iterable[Sequence[Any]]) -> Iterator[PolicyRule]:
    # Rows of (ptype, v0, ...), read by position: this runs 200k times in a reload.
    arity_of = ARITY.get
    for row in rows:
        ptype = row[0]
        arity = arity_of(ptype)
        if arity is None:
            log.warning("ignoring a stored rule of unknown type %r", ptype)
            continue
        yield PolicyRule(ptype, tuple(row[1 : 1 + arity]))


def _chunks(rules: Sequence[PolicyRule]) -> Iterator[Sequence[PolicyRule]]:
    for start in range(0, len(rules), _CHUNK):
        yield rules[start : start + _CHUNK]
