"""`DurableAuditSink`: the gateway's audit sink, a group-commit writer on its own thread.

    event loop(s)                         writer thread
    record(events) ──put──▶ queue ──get──▶ take whatever waits (up to max_batch)
    (records written out                   one transaction: lock head, seal, insert,
     on the caller's side)                 checkpoint?, commit
         await future ◀──────────────────  settle every future (under load: once the
                                           next transaction's records are sent)

Strict mode (the default): `record` returns only after the transaction holding the
events committed (SQLite WAL with synchronous=FULL, PostgreSQL commit), and raises
`AuditUnavailable` when it failed, so the gateway fails closed. Each batch tries
the database afresh, so the gateway recovers by itself when the store returns.
There are no timers on the request path: an idle writer blocks on the queue, and a
lone event is committed at once. The only timed wake-up is the checkpoint rule
("every second"), and only while records wait for a checkpoint.

Relaxed mode gives up the guarantee for latency: `record` returns once the events
are queued (no receipts); a crash or a store outage loses what was queued, and
callers get answers whose records may never be written. It is off by default.

`record_write` (both modes) queues a store write with its records: the writer runs
it inside the group-commit transaction, in a savepoint, so the write, the decision
that allowed it and its outcome commit together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from gateway.audit.outside import CheckpointDirectory
from gateway.core.audit_event import AuditEvent, AuditReceipt
from gateway.core.audit_log import Checkpointer, LogHead, PendingRecord, pending
from gateway.core.audited_write import AuditedWrite, is_refusal
from gateway.core.clock import Clock, utcnow
from gateway.errors import AuditUnavailable, GatewayError, StoreUnavailable
from gateway.store.audit_store import SqlAuditStore
from gateway.store.database import HeldConnection

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 1000
"""Most events committed in one transaction."""

OVERLAP_BATCH = 64
"""From this many records waiting, a transaction's callers are answered only once the
next batch is on its way to the database.

Waking hundreds of callers holds the GIL for milliseconds; answered first, they would
hold up the next transaction's round trips (each needs the GIL back) and leave the
database idle. Answered once the next batch is sent, their wake-up overlaps the
database's work. Below this size the next batch goes out in a fraction of a
millisecond anyway, and answering first costs less latency.
"""


@dataclass(slots=True)
class _Request:
    items: list[PendingRecord]
    """The events to append, turned into record fields by the caller."""
    future: asyncio.Future[Any] | None
    loop: asyncio.AbstractEventLoop | None
    write: AuditedWrite[Any] | None = None
    outcome: Any = None
    """A write's result or the exception it ends with, once the writer ran it."""


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer (read them from any thread; they only grow)."""

    transactions: int = 0
    records: int = 0
    failed_transactions: int = 0
    checkpoints: int = 0
    largest_batch: int = 0
    last_error: str = ""
    batch_sizes: list[int] = field(default_factory=list)
    """Sizes of the most recent transactions (bounded)."""


class DurableAuditSink:
    """Durable, tamper-evident audit sink (see the module docstring).

    Args:
        store: The audit log.
        checkpointer: Signs checkpoints when due; None disables checkpoints.
        outside: Where signed checkpoints are also copied; None keeps them in the
            database only.
        max_batch: Most events per transaction.
        strict: True (default) to return only once events are durable.
        clock: The log's clock.
    """

    def __init__(
        self,
        store: SqlAuditStore,
        *,
        checkpointer: Checkpointer | None = None,
        outside: CheckpointDirectory | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        strict: bool = True,
        clock: Clock = utcnow,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.store = store
        self.checkpointer = checkpointer
        self.outside = outside
        self.strict = strict
        self.stats = WriterStats()
        self._max_batch = max_batch
        self._clock = clock
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._checkpoint_due_at: float | None = None
        self._connection = HeldConnection(store.engine)
        self._unavailable = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    async def record(self, events: list[AuditEvent]) -> list[AuditReceipt]:
        """Appends `events` to the log, in order, in one transaction.

        Returns:
            One receipt per event (strict mode); none in relaxed mode.

        Raises:
            AuditUnavailable: The events could not be made durable (strict mode).
            ValueError: An event cannot be recorded (a naive caller time); nothing
                of this call is appended.
        """
        if not events:
            return []
        if self._closed:
            raise AuditUnavailable("the audit trail is shut down")
        # On the caller's side, so the writer's transaction holds only what needs
        # the log's head; and an event that cannot be a record fails here, alone.
        items = [pending(e) for e in events]
        if not self.strict:
            self._queue.put(_Request(items, None, None))
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[AuditReceipt]] = loop.create_future()
        self._queue.put(_Request(items, future, loop))
        return await future

    async def record_write(self, write: AuditedWrite[T]) -> T:
        """Runs `write` and commits it with its records in one transaction (any mode).

        `write.apply` gets the writer's SQLAlchemy `Connection`, inside a savepoint:
        a `GatewayError` it raises undoes only its own changes, and the refusal
        records take the write's place.

        Raises:
            GatewayError: What `apply` raised (its refusal is durable).
            AuditUnavailable: The transaction failed; nothing was written.
        """
        if self._closed:
            raise AuditUnavailable("the audit trail is shut down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Request([], future, loop, write))
        return await future

    def close(self, timeout: float | None = 30.0) -> None:
        """Writes what is queued, checkpoints what is pending, and stops the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the audit writer did not stop within %ss", timeout)
        else:
            self._connection.close()

    async def aclose(self) -> None:
        """`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    # --- the writer thread -----------------------------------------------------

    def _run(self) -> None:
        # The last transaction's answers, held while the next batch goes out.
        answers: _Answers | None = None
        while True:
            if answers is None:
                timeout = None
                if self._checkpoint_due_at is not None:
                    timeout = max(0.0, self._checkpoint_due_at - time.monotonic())
                try:
                    first = self._queue.get(timeout=timeout)
                except queue.Empty:
                    self._commit([]).give()  # only a checkpoint is due
                    continue
            else:
                try:
                    first = self._queue.get_nowait()
                except queue.Empty:
                    answers.give()
                    answers = None
                    continue
            if first is None:
                break
            batch = [first]
            count = _size(first)
            stopping = False
            while count < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
                count += _size(more)
            if answers is not None and count < OVERLAP_BATCH:
                answers.give()
                answers = None
            answers = self._commit(batch, earlier=answers)
            if stopping:
                break
        if answers is not None:
            answers.give()
        if self._checkpoint_due_at is not None:
            self._commit([], final=True).give()

    def _commit(
        self, batch: Sequence[_Request], *, final: bool = False, earlier: _Answers | None = None
    ) -> _Answers:
        """Commits `batch` in one transaction; returns its answers, not yet given.

        `earlier` (the previous transaction's answers) are given as soon as this
        batch's records are on their way to the database, and at the latest when
        this transaction ends.
        """
        try:
            return self._transact(batch, final, earlier.give if earlier is not None else None)
        finally:
            if earlier is not None:
                earlier.give()

    def _transact(
        self, batch: Sequence[_Request], final: bool, sent: Callable[[], object] | None
    ) -> _Answers:
        items: list[PendingRecord] = []
        owners: list[_Request] = []
        writes: list[_Request] = []
        for request in batch:
            if request.write is not None:
                writes.append(request)
                continue
            items.extend(request.items)
            owners.append(request)
        now = self._clock()
        checkpointer = self.checkpointer
        if not items and not writes and checkpointer is None:
            return _Answers([])

        def apply_writes(conn: Connection) -> list[PendingRecord]:
            return [item for request in writes for item in _apply(conn, request)]

        failed = owners + writes
        try:
            result = self.store.append(
                items,
                now=now,
                checkpointer=checkpointer,
                force_checkpoint=final,
                held=self._connection,
                writes=apply_writes if writes else None,
                sent=sent,
            )
        except StoreUnavailable as exc:
            self._failed(failed, AuditUnavailable(f"audit trail unavailable: {exc.message}"))
            return _Answers([])
        except Exception as exc:
            log.exception("audit write failed")
            self._failed(failed, AuditUnavailable(f"audit write failed: {type(exc).__name__}"))
            return _Answers([])
        if self._unavailable:
            self._unavailable = False
            log.warning("audit store available again; recording resumed")
        stats = self.stats
        stats.transactions += 1
        stats.records += result.appended
        stats.largest_batch = max(stats.largest_batch, result.appended)
        stats.batch_sizes.append(result.appended)
        if len(stats.batch_sizes) > 1000:
            del stats.batch_sizes[:500]
        receipts = result.receipts
        answers = _Answers(
            [(request, [receipts[p.event_id] for p in request.items]) for request in owners]
            + [(request, request.outcome) for request in writes]
        )
        if result.checkpoint is not None:
            stats.checkpoints += 1
            if self.outside is not None:
                try:
                    self.outside.write(result.checkpoint.size, result.checkpoint.note)
                except OSError as exc:
                    log.error(
                        "cannot copy checkpoint %d to %s: %s",
                        result.checkpoint.size,
                        self.outside.path,
                        exc,
                    )
        self._schedule_checkpoint(result.head, final)
        return answers

    def _schedule_checkpoint(self, head: LogHead, final: bool) -> None:
        if self.checkpointer is None or final:
            self._checkpoint_due_at = None
            return
        wait = self.checkpointer.seconds_until_due(head, self._clock())
        self._checkpoint_due_at = None if wait is None else time.monotonic() + wait

    def _failed(self, owners: list[_Request], error: AuditUnavailable) -> None:
        self.stats.failed_transactions += 1
        self.stats.last_error = error.message
        if not self._unavailable:
            self._unavailable = True
            log.error("%s; calls are refused until it is back", error.message)
        _settle_all([(request, error) for request in owners])
        if any(request.future is None for request in owners):
            log.error("relaxed mode: %d audit events were lost", len(owners))


@dataclass(slots=True)
class _Answers:
    """What a committed transaction tells its callers, given once."""

    outcomes: list[tuple[_Request, Any]]
    given: bool = False

    def give(self) -> None:
        """Completes the callers' futures (the first call only)."""
        if not self.given:
            self.given = True
            _settle_all(self.outcomes)


def _size(request: _Request) -> int:
    # A write counts as the records it will add at least (its decision and outcome).
    return len(request.items) if request.write is None else len(request.write.before) + 1


def _apply(conn: Connection, request: _Request) -> list[PendingRecord]:
    """Runs a request's write in a savepoint; returns the records that tell of it.

    Sets `request.outcome` to the result, or to the error the caller will get.
    Runs again from the start when the transaction is retried.
    """
    write = request.write
    assert write is not None
    try:
        with conn.begin_nested():
            result = write.apply(conn)
            # Inside the savepoint: records that cannot be made undo the write.
            records = [pending(e) for e in (*write.before, *write.after(result))]
    except GatewayError as refusal:
        if not is_refusal(refusal):
            raise  # the whole transaction fails
        try:
            records = [pending(e) for e in (*write.before, *write.refused(refusal))]
        except (ValueError, TypeError) as exc:
            request.outcome = exc
            return []
        request.outcome = refusal
        return records
    except (ValueError, TypeError) as exc:
        request.outcome = exc
        return []
    request.outcome = result
    return records


def _settle_all(outcomes: Sequence[tuple[_Request, Any]]) -> None:
    """Completes futures on their own loops, one wake-up per loop."""
    by_loop: defaultdict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = (
        defaultdict(list)
    )
    for request, outcome in outcomes:
        if request.future is not None and request.loop is not None:
            by_loop[request.loop].append((request.future, outcome))
    for loop, pairs in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, pairs)


def _settle(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in pairs:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
