"""Appending to the audit log, without I/O: positions, hashes and the Merkle frontier.

The store keeps a `LogHead` in one row; a writer locks it, calls `append` with the
events of one group commit and writes the records and the new head in the same
transaction. Every writer (thread, process, replica) goes through the head, so
the log has one order and no gaps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.core.audit_event import AuditEvent, AuditReceipt
from gateway.core.audit_record import (
    GENESIS_CHAIN,
    AuditRecord,
    canonical_attributes,
    canonical_form,
    clean_text,
)
from gateway.core.merkle import MerkleFrontier

_INT64 = (1 << 63) - 1


@dataclass(slots=True)
class LogHead:
    """The end of the log: its size, last chain hash and Merkle frontier."""

    size: int = 0
    chain_hash: bytes = GENESIS_CHAIN
    frontier: MerkleFrontier = field(default_factory=MerkleFrontier)
    checkpoint_size: int = 0
    """Size of the newest checkpoint."""
    checkpoint_at: datetime | None = None
    """When the newest checkpoint was made."""

    def root(self) -> bytes:
        """The Merkle root of the whole log."""
        return self.frontier.root()


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """An event turned into record fields, before the log gives it a position."""

    event_id: str
    event_type: str
    caller_time: datetime
    trace_id: str
    span_id: str
    parent_span_id: str
    actor: str
    source_domain: str
    target_domain: str
    capability: str
    decision: str
    rule: str
    policy_version: int
    outcome: str
    duration_us: int
    classifications: tuple[str, ...]
    attributes: str


def _bounded(value: int) -> int:
    return max(-_INT64, min(_INT64, int(value)))


def pending(event: AuditEvent) -> PendingRecord:
    """The record fields of an event: clean text, canonical attributes, bounded numbers."""
    caller_time = event.caller_time
    if caller_time.tzinfo is None:
        raise ValueError(f"audit event {event.event_id} has a naive caller time")
    return PendingRecord(
        event_id=clean_text(event.event_id),
        event_type=clean_text(str(event.type)),
        caller_time=caller_time,
        trace_id=clean_text(event.trace_id),
        span_id=clean_text(event.task_id),
        parent_span_id=clean_text(event.parent_task_id),
        actor=clean_text(event.actor),
        source_domain=clean_text(event.source_domain),
        target_domain=clean_text(event.target_domain),
        capability=clean_text(event.capability),
        decision=clean_text(event.decision),
        rule=clean_text(event.rule),
        policy_version=_bounded(event.policy_version),
        outcome=clean_text(event.outcome),
        duration_us=_bounded(event.duration_us),
        classifications=tuple(sorted({clean_text(c) for c in event.classifications})),
        attributes=canonical_attributes(event.attributes),
    )


def append(head: LogHead, items: Sequence[PendingRecord], log_time: datetime) -> list[AuditRecord]:
    """Gives `items` the next positions, hashes them and advances `head` in place.

    Args:
        head: The log's head as locked in the current transaction.
        items: Records to append, in order; their event ids are new to the log.
        log_time: The writer's clock, the same for the whole group commit.

    Returns:
        The sealed records, ready to insert.
    """
    records: list[AuditRecord] = []
    chain = head.chain_hash
    frontier = head.frontier
    seq = head.size
    sha256 = hashlib.sha256
    for item in items:
        record = AuditRecord(
            seq=seq,
            event_id=item.event_id,
            event_type=item.event_type,
            caller_time=item.caller_time,
            log_time=log_time,
            trace_id=item.trace_id,
            span_id=item.span_id,
            parent_span_id=item.parent_span_id,
            actor=item.actor,
            source_domain=item.source_domain,
            target_domain=item.target_domain,
            capability=item.capability,
            decision=item.decision,
            rule=item.rule,
            policy_version=item.policy_version,
            outcome=item.outcome,
            duration_us=item.duration_us,
            classifications=item.classifications,
            attributes=item.attributes,
        )
        leaf = sha256(b"\x00" + canonical_form(record)).digest()
        chain = sha256(chain + leaf).digest()
        frontier.append(leaf)
        records.append(_with_hashes(record, leaf, chain))
        seq += 1
    head.size = seq
    head.chain_hash = chain
    return records


def _with_hashes(record: AuditRecord, leaf: bytes, chain: bytes) -> AuditRecord:
    # dataclasses.replace re-runs __init__ through keyword lookups; this is the
    # same, written out, and runs once per record on the write path.
    return AuditRecord(
        record.seq,
        record.event_id,
        record.event_type,
        record.caller_time,
        record.log_time,
        record.trace_id,
        record.span_id,
        record.parent_span_id,
        record.actor,
        record.source_domain,
        record.target_domain,
        record.capability,
        record.decision,
        record.rule,
        record.policy_version,
        record.outcome,
        record.duration_us,
        record.classifications,
        record.attributes,
        leaf,
        chain,
    )


def receipt(record: AuditRecord) -> AuditReceipt:
    """The receipt of a stored record."""
    return AuditReceipt(event_id=record.event_id, seq=record.seq, leaf_hash=record.leaf_hash)
