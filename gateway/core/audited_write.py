"""A store write and its audit records, made durable together.

A write that must be audited before it acts (a context item's new version, say)
could record its decision, then write, then record the outcome: three durable
commits, and a crash between the second and the third leaves a version whose
outcome was never recorded. An `AuditedWrite` instead hands the audit sink the
decision records, the write itself and how to describe its outcome; a sink that
supports it (`AuditedWriter`, the durable trail) runs the write inside the
transaction that appends the records, so one commit makes all of it durable, and
the writes of concurrent callers share the trail's group commit.

    before records ─┐
    apply(tx)       ├─ one transaction ─▶ commit ─▶ result (or the refusal)
    after/refused ──┘
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from gateway.core.audit_event import AuditEvent
from gateway.core.ports import AuditSink
from gateway.errors import AuditUnavailable, GatewayError, StoreUnavailable

T = TypeVar("T")


class Transaction(Protocol):
    """An open transaction on the audit trail's database, opaque to the core.

    Only the store that `apply` calls looks inside it.
    """


@dataclass(frozen=True, slots=True)
class AuditedWrite(Generic[T]):
    """A write, the records that come before it and those that tell its outcome."""

    before: list[AuditEvent]
    """Recorded ahead of the write, whatever its outcome (the decision that allowed it)."""
    apply: Callable[[Transaction | None], T]
    """Does the write in the given transaction (None: in a transaction of its own).

    It may raise a `GatewayError` (a stale version, say) before changing anything;
    it may run more than once when a transaction is retried.
    """
    after: Callable[[T], list[AuditEvent]]
    """The records of a write that happened, from its result."""
    refused: Callable[[GatewayError], list[AuditEvent]]
    """The records of a write that `apply` refused with the given error (see `is_refusal`)."""


def is_refusal(error: GatewayError) -> bool:
    """Whether `apply` refused the write (stale, not the owner...) rather than failed.

    An unreachable store or trail is no refusal: nothing is recorded for it, and the
    caller learns that the write could not be made.
    """
    return not isinstance(error, StoreUnavailable | AuditUnavailable)


@runtime_checkable
class AuditedWriter(Protocol):
    """An audit sink that commits a write and its records in one transaction."""

    async def record_write(self, write: AuditedWrite[T]) -> T:
        """Commits `write.before`, the write and its outcome records together.

        Returns:
            What `write.apply` returned.

        Raises:
            GatewayError: What `apply` raised; the refusal records are committed.
            AuditUnavailable: Nothing could be made durable; nothing was written.
        """
        ...


async def record_write(
    sink: AuditSink,
    write: AuditedWrite[T],
    blocking: Callable[[Callable[[], Any]], Awaitable[Any]],
) -> T:
    """Records and applies `write`: in one transaction when `sink` can, else in three steps.

    The three steps (for sinks that keep no transactional log) still record before
    acting: the decision is recorded first, the write runs in its own transaction
    (through `blocking`, off the event loop), then its outcome is recorded.
    """
    if isinstance(sink, AuditedWriter):
        return await sink.record_write(write)
    await sink.record(write.before)
    try:
        result: T = await blocking(lambda: write.apply(None))
    except GatewayError as exc:
        if is_refusal(exc):
            await sink.record(write.refused(exc))
        raise
    await sink.record(write.after(result))
    return result
