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
    canonical_parts,
    clean_text,
    format_time,
    placed,
)
from gateway.core.checkpoint import Checkpoint
from gateway.core.merkle import MerkleFrontier
from gateway.core.signed_note import NoteSigner

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


@dataclass(slots=True)
class PendingRecord:
    """An event turned into record fields, before the log gives it a position.

    Made by `pending` only, and immutable in use (not frozen, for speed, as
    `AuditRecord`): it also holds its canonical form, which `seal` hashes, and a
    field changed afterwards would not be in it.
    """

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
    caller_time_text: str = ""
    """`caller_time` as the canonical form writes it."""
    form: tuple[str, str, str] = ("", "", "")
    """The canonical form around log time and position (`canonical_parts`)."""


def _bounded(value: int) -> int:
    return max(-_INT64, min(_INT64, int(value)))


def pending(event: AuditEvent) -> PendingRecord:
    """The record fields of an event and their canonical form but for log time and position.

    Text is cleaned, attributes made canonical, numbers bounded to 64 bits.
    """
    caller_time = event.caller_time
    if caller_time.tzinfo is None:
        raise ValueError(f"audit event {event.event_id} has a naive caller time")
    texts: tuple[str, ...] = (
        event.event_id,
        str(event.type),
        event.trace_id,
        event.task_id,
        event.parent_task_id,
        event.actor,
        event.source_domain,
        event.target_domain,
        event.capability,
        event.decision,
        event.rule,
        event.outcome,
    )
    joined = "".join(texts)
    if not joined.isascii() or "\x00" in joined:
        texts = tuple(clean_text(t) for t in texts)
    classifications = event.classifications
    if classifications:
        classifications = tuple(sorted({clean_text(c) for c in classifications}))
    policy_version, duration_us = event.policy_version, event.duration_us
    if not (-_INT64 <= policy_version <= _INT64 and -_INT64 <= duration_us <= _INT64):
        policy_version, duration_us = _bounded(policy_version), _bounded(duration_us)
    record = PendingRecord(
        texts[0],
        texts[1],
        caller_time,
        texts[2],
        texts[3],
        texts[4],
        texts[5],
        texts[6],
        texts[7],
        texts[8],
        texts[9],
        texts[10],
        policy_version,
        texts[11],
        duration_us,
        classifications,
        canonical_attributes(event.attributes),
    )
    # Written out here, on the caller's side: the writer only adds the position.
    record.caller_time_text = time_text = format_time(caller_time)
    record.form = canonical_parts(record, time_text)
    return record


Seal = tuple[int, bytes, bytes]
"""A pending record's position, leaf hash and chain hash."""


def seal(head: LogHead, items: Sequence[PendingRecord], log_time: str) -> list[Seal]:
    """Gives `items` the next positions and their hashes, advancing `head` in place.

    Args:
        head: The log's head as locked in the current transaction.
        items: Records to append, in order; their event ids are new to the log.
        log_time: The writer's clock (`format_time`), the same for the group commit.

    Returns:
        One seal per item, in order.
    """
    seals: list[Seal] = []
    chain = head.chain_hash
    frontier = head.frontier
    seq = head.size
    sha256 = hashlib.sha256
    for item in items:
        leaf = sha256(b"\x00" + placed(item.form, seq, log_time)).digest()
        chain = sha256(chain + leaf).digest()
        frontier.append(leaf)
        seals.append((seq, leaf, chain))
        seq += 1
    head.size = seq
    head.chain_hash = chain
    return seals


def append(head: LogHead, items: Sequence[PendingRecord], log_time: datetime) -> list[AuditRecord]:
    """`seal`, with the records it makes (tests and tools; the store writes rows).

    Returns:
        The sealed records.
    """
    records: list[AuditRecord] = []
    seals = seal(head, items, format_time(log_time))
    for item, (seq, leaf, chain) in zip(items, seals, strict=True):
        records.append(
            AuditRecord(
                seq,
                item.event_id,
                item.event_type,
                item.caller_time,
                log_time,
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
                item.classifications,
                item.attributes,
                leaf,
                chain,
            )
        )
    return records


def receipt(record: AuditRecord) -> AuditReceipt:
    """The receipt of a stored record."""
    return AuditReceipt(event_id=record.event_id, seq=record.seq, leaf_hash=record.leaf_hash)


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint of the log, signed, as the writer stores and publishes it."""

    size: int
    root_hash: bytes
    note: str
    signer: str
    """The verifier key of the signer."""
    created_at: datetime


class Checkpointer:
    """Decides when the log is due a checkpoint and signs it.

    A checkpoint is due once `every_records` records were added since the last
    one, or `every_seconds` passed since it and at least one record was added.

    Args:
        origin: The log's name, the first line of every checkpoint.
        signer: The key that signs.
        every_records: Records between checkpoints at most.
        every_seconds: Seconds between checkpoints at most, while records arrive.
    """

    def __init__(
        self,
        origin: str,
        signer: NoteSigner,
        *,
        every_records: int = 1000,
        every_seconds: float = 1.0,
    ) -> None:
        self.origin = origin
        self.signer = signer
        self.every_records = every_records
        self.every_seconds = every_seconds

    def due(self, head: LogHead, now: datetime) -> bool:
        """True if the log at `head` should be checkpointed at `now`."""
        added = head.size - head.checkpoint_size
        if added <= 0:
            return False
        if added >= self.every_records or head.checkpoint_at is None:
            return True
        return (now - head.checkpoint_at).total_seconds() >= self.every_seconds

    def seconds_until_due(self, head: LogHead, now: datetime) -> float | None:
        """How long until the time rule makes a checkpoint due; None if nothing is pending."""
        if head.size <= head.checkpoint_size:
            return None
        if head.checkpoint_at is None:
            return 0.0
        return max(0.0, self.every_seconds - (now - head.checkpoint_at).total_seconds())

    def sign(self, head: LogHead, now: datetime) -> SignedCheckpoint:
        """Signs the log at `head` and records the checkpoint in `head`."""
        root = head.root()
        note = Checkpoint(self.origin, head.size, root).sign([self.signer])
        head.checkpoint_size = head.size
        head.checkpoint_at = now
        return SignedCheckpoint(head.size, root, note, self.signer.verifier.vkey, now)
