"""`SqlAuditStore`: the audit log in SQL: appends, checkpoints, queries and reads for proofs.

Appending is one transaction per group commit. It starts by locking the single
`audit_head` row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's `BEGIN
IMMEDIATE` already admits one writer), so every writer on every replica appends
after the last committed record: positions are assigned inside the transaction
from the head, never from a sequence, and the log keeps one order without gaps.
Events whose id is already in the log are not written again; their existing
receipts are returned (a retried write never duplicates).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.core.audit_event import AuditReceipt
from gateway.core.audit_log import Checkpointer, LogHead, PendingRecord, SignedCheckpoint, seal
from gateway.core.audit_query import AuditPage, AuditQuery
from gateway.core.audit_record import AuditRecord, classifications_text, format_time
from gateway.core.merkle import MerkleFrontier
from gateway.store.audit_tables import HEAD_ID, audit_checkpoints, audit_head, audit_records
from gateway.store.database import (
    HeldConnection,
    driver_cursor,
    run_transaction,
    unavailable_on_error,
)

_RECORD_COLUMNS = tuple(audit_records.c)
_DEDUPE_CHUNK = 500
_COPY_CHUNK = 64
"""Records sealed at a time while a COPY streams (about one driver buffer of rows)."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one append transaction did."""

    receipts: dict[str, AuditReceipt]
    """A receipt for every event id asked for, new or already in the log."""
    appended: int
    checkpoint: SignedCheckpoint | None
    head: LogHead
    """The head after the transaction."""


class SqlAuditStore:
    """The audit log on an engine from `gateway.store.database.open_engine`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        # Inserts go to the driver directly: SQLAlchemy's per-row parameter
        # processing would cost more than hashing the record.
        marker = "%s" if self._postgres else "?"
        names = self._column_names = ", ".join(c.name for c in _RECORD_COLUMNS)
        # Binary COPY: the driver's C dumpers and the server both skip text
        # conversions (timestamps, hex bytea), ~20% of the client's cost per record.
        self._copy_sql = f"COPY {audit_records.name} ({names}) FROM STDIN (FORMAT BINARY)"
        self._copy_types = [c.type.compile(dialect=engine.dialect).lower() for c in _RECORD_COLUMNS]
        self._lock_head_sql = (
            "SELECT size, chain_hash, frontier, checkpoint_size, checkpoint_at "
            f"FROM {audit_head.name} WHERE id = {marker}"
            + (" FOR UPDATE" if self._postgres else "")
        )
        self._update_head_sql = (
            f"UPDATE {audit_head.name} SET size = {marker}, chain_hash = {marker}, "
            f"frontier = {marker}, checkpoint_size = {marker}, checkpoint_at = {marker}, "
            f"updated_at = {marker} WHERE id = {marker}"
        )
        self._insert_sql = (
            f"INSERT INTO {audit_records.name} ({names}) "
            f"VALUES ({', '.join(marker for _ in _RECORD_COLUMNS)})"
        )

    @property
    def engine(self) -> Engine:
        """The engine the log lives on."""
        return self._engine

    # --- writing -----------------------------------------------------------------

    def append(
        self,
        items: Sequence[PendingRecord],
        *,
        now: datetime,
        checkpointer: Checkpointer | None = None,
        force_checkpoint: bool = False,
        held: HeldConnection | None = None,
        writes: Callable[[Connection], Sequence[PendingRecord]] | None = None,
        sent: Callable[[], object] | None = None,
    ) -> AppendResult:
        """Appends records in one transaction, checkpointing when due.

        Args:
            items: Records to append, in order. Ids already in the log (or repeated
                in `items`) are not appended again.
            now: The log time of the new records.
            checkpointer: Signs a checkpoint when one is due after the append.
            force_checkpoint: Checkpoint any records not yet covered, due or not.
            held: The writer's kept-open connection (None: one from the pool).
            writes: Store writes to make in the same transaction, once the head is
                locked (so they are serialized with every writer of the log); it
                returns their records, appended after `items`. It runs again when
                the transaction is retried.
            sent: Called once the records are on their way to the database, before
                waiting for it to insert and commit them (again if retried).

        Returns:
            Receipts for every id, the number appended and the checkpoint made.

        Raises:
            StoreUnavailable: The database could not be reached; nothing was written.
        """

        def work(conn: Connection, dedupe: bool) -> AppendResult:
            with driver_cursor(conn) as cursor:
                return appended(conn, cursor, dedupe)

        def appended(conn: Connection, cursor: Any, dedupe: bool) -> AppendResult:
            head = self._lock_head(cursor)
            all_items = items if writes is None else [*items, *writes(conn)]
            fresh: Sequence[PendingRecord] = all_items
            receipts: dict[str, AuditReceipt] = {}
            if dedupe:
                receipts = self._existing(conn, [i.event_id for i in all_items])
                fresh = []
                for item in all_items:
                    if item.event_id not in receipts:
                        receipts[item.event_id] = AuditReceipt(item.event_id, -1, b"")
                        fresh.append(item)
            appended = self._insert(cursor, head, fresh, now, receipts, sent) if fresh else 0
            checkpoint = None
            if checkpointer is not None and (
                checkpointer.due(head, now)
                or (force_checkpoint and head.size > head.checkpoint_size)
            ):
                checkpoint = checkpointer.sign(head, now)
                conn.execute(
                    audit_checkpoints.insert().values(
                        size=checkpoint.size,
                        root_hash=checkpoint.root_hash,
                        created_at=checkpoint.created_at,
                        signer=checkpoint.signer,
                        note=checkpoint.note,
                    )
                )
            if appended or checkpoint is not None:
                cursor.execute(
                    self._update_head_sql,
                    (
                        head.size,
                        head.chain_hash,
                        head.frontier.to_bytes(),
                        head.checkpoint_size,
                        self._time(head.checkpoint_at),
                        self._time(now),
                        HEAD_ID,
                    ),
                )
            return AppendResult(receipts, appended, checkpoint, head)

        # Event ids are random, so a repeat is rare: insert optimistically, and only
        # when the unique index objects look the ids up and append what is new.
        try:
            return run_transaction(self._engine, lambda conn: work(conn, False), held=held)
        except sa.exc.IntegrityError:
            return run_transaction(self._engine, lambda conn: work(conn, True), held=held)

    def _insert(
        self,
        cursor: Any,
        head: LogHead,
        items: Sequence[PendingRecord],
        now: datetime,
        receipts: dict[str, AuditReceipt],
        sent: Callable[[], object] | None,
    ) -> int:
        """Seals `items` after `head`, inserts them and adds their receipts; returns how many."""
        log_time = format_time(now)
        if not self._postgres:
            rows = self._rows(head, items, log_time, _sqlite_text(log_time), receipts)
            if sent is not None:
                sent()
            cursor.executemany(self._insert_sql, rows)
            return len(items)
        # PostgreSQL: COPY costs the client about half of what executemany does, and
        # the server inserts the rows it has while the next chunk is sealed here.
        with cursor.copy(self._copy_sql) as copy:
            copy.set_types(self._copy_types)
            for start in range(0, len(items), _COPY_CHUNK):
                chunk = items[start : start + _COPY_CHUNK]
                for row in self._rows(head, chunk, log_time, now, receipts):
                    copy.write_row(row)
            if sent is not None:
                sent()  # then the server finishes inserting
        return len(items)

    def _rows(
        self,
        head: LogHead,
        items: Sequence[PendingRecord],
        log_time: str,
        stored_log_time: Any,
        receipts: dict[str, AuditReceipt],
    ) -> list[tuple[Any, ...]]:
        """The rows of `items` sealed after `head` at `log_time`, in column order."""
        postgres = self._postgres
        rows = []
        for item, (seq, leaf, chain) in zip(items, seal(head, items, log_time), strict=True):
            event_id = item.event_id
            receipts[event_id] = AuditReceipt(event_id, seq, leaf)
            rows.append(
                (
                    seq,
                    event_id,
                    item.event_type,
                    item.caller_time if postgres else _sqlite_text(item.caller_time_text),
                    stored_log_time,
                    item.trace_id,
                    item.span_id,
                    item.parent_span_id,
                    item.actor,
                    item.source_domain,
                    item.target_domain,
                    item.capability,
                    item.decision,
                    item.rule,
                    item.policy_version,
                    item.outcome,
                    item.duration_us,
                    classifications_text(item.classifications),
                    item.attributes,
                    leaf,
                    chain,
                )
            )
        return rows

    def _lock_head(self, cursor: Any) -> LogHead:
        cursor.execute(self._lock_head_sql, (HEAD_ID,))
        size, chain, frontier, checkpoint_size, checkpoint_at = cursor.fetchone()
        if checkpoint_at is not None and not self._postgres:
            checkpoint_at = _sqlite_datetime(checkpoint_at)
        return LogHead(
            size=size,
            chain_hash=bytes(chain),
            frontier=MerkleFrontier.from_bytes(size, bytes(frontier)),
            checkpoint_size=checkpoint_size,
            checkpoint_at=checkpoint_at,
        )

    def _time(self, moment: datetime | None) -> Any:
        if moment is None or self._postgres:
            return moment
        return _sqlite_text(format_time(moment))

    def _existing(self, conn: Connection, event_ids: list[str]) -> dict[str, AuditReceipt]:
        found: dict[str, AuditReceipt] = {}
        c = audit_records.c
        for start in range(0, len(event_ids), _DEDUPE_CHUNK):
            chunk = event_ids[start : start + _DEDUPE_CHUNK]
            rows = conn.execute(
                sa.select(c.event_id, c.seq, c.leaf_hash).where(c.event_id.in_(chunk))
            )
            for event_id, seq, leaf in rows:
                found[event_id] = AuditReceipt(event_id, seq, bytes(leaf))
        return found

    # --- reading -----------------------------------------------------------------

    def head(self) -> LogHead:
        """The log's head as committed."""
        return run_transaction(
            self._engine,
            lambda conn: _head_from_row(
                conn.execute(sa.select(audit_head).where(audit_head.c.id == HEAD_ID))
                .mappings()
                .one()
            ),
            read_only=True,
        )

    def checkpoints(self, *, since_size: int = 0) -> list[SignedCheckpoint]:
        """Stored checkpoints of at least `since_size`, smallest first."""
        query = (
            sa.select(audit_checkpoints)
            .where(audit_checkpoints.c.size >= since_size)
            .order_by(audit_checkpoints.c.size)
        )
        return run_transaction(
            self._engine,
            lambda conn: [_checkpoint_from_row(r) for r in conn.execute(query).mappings()],
            read_only=True,
        )

    def checkpoint(self, size: int | None = None) -> SignedCheckpoint | None:
        """The checkpoint of `size`, or the newest one; None if there is none."""
        query = sa.select(audit_checkpoints)
        if size is None:
            query = query.order_by(audit_checkpoints.c.size.desc()).limit(1)
        else:
            query = query.where(audit_checkpoints.c.size == size)
        return run_transaction(
            self._engine,
            lambda conn: next(
                (_checkpoint_from_row(r) for r in conn.execute(query).mappings()), None
            ),
            read_only=True,
        )

    def record(self, seq: int) -> AuditRecord | None:
        """The record at position `seq`, or None."""
        query = sa.select(*_RECORD_COLUMNS).where(audit_records.c.seq == seq)
        return run_transaction(
            self._engine,
            lambda conn: next((record_from_row(r) for r in conn.execute(query)), None),
            read_only=True,
        )

    def records_by_event(self, event_ids: Sequence[str]) -> list[AuditRecord]:
        """The records of these event ids, by position."""
        query = (
            sa.select(*_RECORD_COLUMNS)
            .where(audit_records.c.event_id.in_(list(event_ids)))
            .order_by(audit_records.c.seq)
        )
        return run_transaction(
            self._engine,
            lambda conn: [record_from_row(r) for r in conn.execute(query)],
            read_only=True,
        )

    def leaf_hashes(self, size: int) -> list[bytes]:
        """The leaf hashes of the first `size` records (as stored), for proofs."""
        query = (
            sa.select(audit_records.c.leaf_hash)
            .where(audit_records.c.seq < size)
            .order_by(audit_records.c.seq)
        )

        def work(conn: Connection) -> list[bytes]:
            return [bytes(leaf) for (leaf,) in conn.execute(query)]

        return run_transaction(self._engine, work, read_only=True)

    def query(self, query: AuditQuery) -> AuditPage:
        """One page of records matching `query`."""
        statement = _filtered(query).limit(query.limit + 1)

        def work(conn: Connection) -> AuditPage:
            rows = [record_from_row(r) for r in conn.execute(statement)]
            size = conn.execute(
                sa.select(audit_head.c.size).where(audit_head.c.id == HEAD_ID)
            ).scalar_one()
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            return AuditPage(rows, rows[-1].seq if more and rows else None, size)

        return run_transaction(self._engine, work, read_only=True)

    def snapshot(self, chunk: int = 5000) -> Iterator[LogSnapshotItem]:
        """The whole log as of one snapshot: the head, the checkpoints, then every record.

        Yields a `LogHead`, then the list of stored checkpoints, then the records
        in position order, read in chunks within one read-only transaction.

        Raises:
            StoreUnavailable: The database could not be reached.
        """
        options: dict[str, Any] = {"fedgate_read_only": True}
        if self._postgres:
            options["isolation_level"] = "REPEATABLE READ"
        with (
            unavailable_on_error(self._engine),
            self._engine.connect().execution_options(**options) as conn,
            conn.begin(),
        ):
            head_row = (
                conn.execute(sa.select(audit_head).where(audit_head.c.id == HEAD_ID))
                .mappings()
                .one()
            )
            try:
                head = _head_from_row(head_row)
            except ValueError:
                # A frontier that does not fit the size: the head was edited. A
                # head with no subtrees cannot match the log, and verify says so.
                head = LogHead(size=head_row["size"], chain_hash=b"")
            yield head
            yield [
                _checkpoint_from_row(r)
                for r in conn.execute(
                    sa.select(audit_checkpoints).order_by(audit_checkpoints.c.size)
                ).mappings()
            ]
            # Straight from the driver: SQLAlchemy's per-value result processing
            # would cost more than hashing the record.
            marker = "%s" if self._postgres else "?"
            sql = (
                f"SELECT {self._column_names} FROM {audit_records.name} "
                f"WHERE seq > {marker} ORDER BY seq LIMIT {int(chunk)}"
            )
            convert = _record_from_postgres if self._postgres else _sqlite_records()
            after = -1
            while True:
                rows = conn.exec_driver_sql(sql, (after,)).all()
                for row in rows:
                    yield convert(row)
                if len(rows) < chunk:
                    return
                after = rows[-1][0]


LogSnapshotItem = LogHead | list[SignedCheckpoint] | AuditRecord


def _filtered(query: AuditQuery) -> sa.Select[Any]:
    """The records matching `query`, in its order (the caller adds the LIMIT).

    Each filter column has an index on (column, seq), so a page reads only its rows.
    A domain auditor's scope (source OR target in a set) would defeat those indexes
    (an OR gathers every match, then sorts); it becomes one index range per (column,
    domain), each cut at the page size, merged by position.
    """
    c = audit_records.c
    conditions: list[sa.ColumnElement[bool]] = []
    for column, value in (
        (c.source_domain, query.source_domain),
        (c.target_domain, query.target_domain),
        (c.actor, query.actor),
        (c.capability, query.capability),
        (c.event_type, query.event_type),
        (c.decision, query.decision),
        (c.outcome, query.outcome),
        (c.trace_id, query.trace_id),
    ):
        if value:
            conditions.append(column == value)
    if query.classification:
        conditions.append(
            c.classifications.contains(
                json.dumps(query.classification, ensure_ascii=False), autoescape=True
            )
        )
    if query.since is not None:
        conditions.append(c.log_time >= query.since)
    if query.until is not None:
        conditions.append(c.log_time < query.until)
    if query.below is not None:
        conditions.append(c.seq < query.below)
    if query.cursor is not None:
        conditions.append(c.seq < query.cursor if query.newest_first else c.seq > query.cursor)
    order = c.seq.desc() if query.newest_first else c.seq.asc()
    if query.involving is None:
        return sa.select(*_RECORD_COLUMNS).where(*conditions).order_by(order)
    if not query.involving:
        return sa.select(*_RECORD_COLUMNS).where(sa.false())
    parts = [
        sa.select(*_RECORD_COLUMNS)
        .where(*conditions, column == domain)
        .order_by(order)
        .limit(query.limit + 1)
        .subquery()
        for domain in sorted(query.involving)
        for column in (c.source_domain, c.target_domain)
    ]
    merged = sa.union(*(sa.select(*part.c) for part in parts)).subquery()
    return sa.select(*merged.c).order_by(
        merged.c.seq.desc() if query.newest_first else merged.c.seq.asc()
    )


def _sqlite_text(rfc3339: str) -> str:
    """`format_time` text in the SQLite format of UTCDateTime: `2026-11-24 20:18:36.123456`."""
    return f"{rfc3339[:10]} {rfc3339[11:-1]}"


def _classifications(text: str) -> tuple[str, ...]:
    if text == "[]":
        return ()
    try:
        values = json.loads(text)
    except ValueError:
        return (text,)  # not what the writer stored: the leaf hash will say so
    if not isinstance(values, list):
        return (text,)
    return tuple(str(v) for v in values)


def record_from_row(row: Sequence[Any]) -> AuditRecord:
    """An `AuditRecord` from a row of all `audit_records` columns, in table order."""
    (
        seq,
        event_id,
        event_type,
        caller_time,
        log_time,
        trace_id,
        span_id,
        parent_span_id,
        actor,
        source_domain,
        target_domain,
        capability,
        decision,
        rule,
        policy_version,
        outcome,
        duration_us,
        classifications,
        attributes,
        leaf,
        chain,
    ) = row
    return AuditRecord(
        seq,
        event_id,
        event_type,
        caller_time,
        log_time,
        trace_id,
        span_id,
        parent_span_id,
        actor,
        source_domain,
        target_domain,
        capability,
        decision,
        rule,
        policy_version,
        outcome,
        duration_us,
        _classifications(classifications),
        attributes,
        bytes(leaf),
        bytes(chain),
    )


def _sqlite_records() -> Callable[[Sequence[Any]], AuditRecord]:
    """A row converter for one read of SQLite rows, in position order."""
    # SQLite keeps UTCDateTime values as UTC text, "YYYY-MM-DD HH:MM:SS.ffffff". The
    # records of a group commit share their log time: it is parsed once for them.
    last: tuple[Any, datetime] = (None, datetime.min)

    def convert(row: Sequence[Any]) -> AuditRecord:
        nonlocal last
        values = list(row)
        values[3] = _sqlite_datetime(values[3])
        if values[4] != last[0]:
            last = (values[4], _sqlite_datetime(values[4]))
        values[4] = last[1]
        return record_from_row(values)

    return convert


def _record_from_postgres(row: Sequence[Any]) -> AuditRecord:
    return record_from_row(row)


def _sqlite_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            pass
    # Not what the writer stored; an impossible time makes the leaf hash differ.
    return datetime.min.replace(tzinfo=UTC)


def _head_from_row(row: Any) -> LogHead:
    return LogHead(
        size=row["size"],
        chain_hash=bytes(row["chain_hash"]),
        frontier=MerkleFrontier.from_bytes(row["size"], bytes(row["frontier"])),
        checkpoint_size=row["checkpoint_size"],
        checkpoint_at=row["checkpoint_at"],
    )


def _checkpoint_from_row(row: Any) -> SignedCheckpoint:
    return SignedCheckpoint(
        size=row["size"],
        root_hash=bytes(row["root_hash"]),
        note=row["note"],
        signer=row["signer"],
        created_at=row["created_at"],
    )
