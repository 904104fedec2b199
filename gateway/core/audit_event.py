"""Audit events the gateway emits, the receipts the log returns, and a log-only sink.

The durable, tamper-evident sink is `gateway.store.audit_writer.DurableAuditSink`;
`LogAuditSink` only logs (tests and tools that need no trail).
"""

from __future__ import annotations

import enum
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any, NamedTuple

from gateway.core.clock import utcnow

log = logging.getLogger("fedgate.audit")


class EventType(enum.StrEnum):
    """Kinds of audit records."""

    DOMAIN_REGISTERED = "domain.registered"
    DOMAIN_DEREGISTERED = "domain.deregistered"
    LEASES_RENEWED = "lease.renewed"
    """Lease renewals, summarised in bulk (not one record per heartbeat)."""
    LEASE_EXPIRED = "lease.expired"
    TASK_REQUESTED = "task.requested"
    """A call and the policy decision on it, recorded before it is forwarded."""
    POLICY_DECISION = "policy.decision"
    """A decision that is not part of a task (context flows, audit reads, admin)."""
    TASK_ROUTED = "task.routed"
    TASK_FINISHED = "task.finished"
    """How a call ended (also refused calls), recorded before the caller hears it."""
    CONTEXT_WRITTEN = "context.written"
    CONTEXT_READ = "context.read"
    CONTEXT_REDACTED = "context.redacted"
    IDENTITY_REFUSED = "identity.refused"
    POLICY_CHANGED = "policy.changed"


def new_event_id() -> str:
    """A unique event id, 32 hex digits: 16 of the nanosecond clock, then 16 random.

    Ids that grow with time keep the log's unique index on event ids appending at
    its end instead of at random places, which is what makes them cheap to insert.
    """
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


@dataclass(slots=True)
class AuditEvent:
    """One thing that happened, as the audit trail records it.

    Treat it as immutable. Not a frozen dataclass: a frozen one's constructor
    costs ten times as much, and the request path builds two per call.
    """

    type: EventType
    actor: str = ""
    source_domain: str = ""
    target_domain: str = ""
    capability: str = ""
    trace_id: str = ""
    task_id: str = ""
    """The task the event is about; it is the span id of the record."""
    parent_task_id: str = ""
    """The task that caused `task_id` (nested calls); the record's parent span id."""
    decision: str = ""
    """`allow` or `deny` when a policy decided, else empty."""
    rule: str = ""
    policy_version: int = 0
    outcome: str = ""
    duration_us: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    classifications: tuple[str, ...] = ()
    """Classifications of the context the event concerns (`public` ... `restricted`)."""
    event_id: str = field(default_factory=new_event_id)
    caller_time: datetime = field(default_factory=utcnow)


class AuditReceipt(NamedTuple):
    """Where the log put an event: what a caller can later ask an inclusion proof for.

    A named tuple: the writer makes one per record, and a frozen dataclass's
    constructor costs four times as much.
    """

    event_id: str
    seq: int
    leaf_hash: bytes


class LogAuditSink:
    """Writes events to the `fedgate.audit` logger at DEBUG level. Not durable.

    A placeholder for tests and experiments; the durable audit trail replaces it.
    """

    async def record(self, events: list[AuditEvent]) -> list[AuditReceipt]:
        """Logs each event as one JSON line when DEBUG logging is on; no receipts."""
        if not log.isEnabledFor(logging.DEBUG):
            return []
        for event in events:
            # Shallow field copy: asdict() deep-copies and costs more than the call itself.
            fields = {f.name: getattr(event, f.name) for f in dataclass_fields(event)}
            log.debug(json.dumps(fields, default=str))
        return []
