"""Audit events the gateway emits, and the log-only sink used until the audit trail lands."""

from __future__ import annotations

import enum
import json
import logging
import secrets
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from gateway.core.clock import utcnow

log = logging.getLogger("fedgate.audit")


class EventType(enum.StrEnum):
    """Kinds of audit records."""

    DOMAIN_REGISTERED = "domain.registered"
    DOMAIN_DEREGISTERED = "domain.deregistered"
    LEASE_EXPIRED = "lease.expired"
    TASK_REQUESTED = "task.requested"
    TASK_FINISHED = "task.finished"
    IDENTITY_REFUSED = "identity.refused"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened, as the audit trail records it."""

    type: EventType
    actor: str = ""
    source_domain: str = ""
    target_domain: str = ""
    capability: str = ""
    trace_id: str = ""
    task_id: str = ""
    decision: str = ""
    rule: str = ""
    policy_version: int = 0
    outcome: str = ""
    duration_us: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: secrets.token_hex(16))
    caller_time: datetime = field(default_factory=utcnow)


class LogAuditSink:
    """Writes events to the `fedgate.audit` logger at DEBUG level. Not durable.

    A placeholder for tests and experiments; the durable audit trail replaces it.
    """

    async def record(self, events: list[AuditEvent]) -> None:
        """Logs each event as one JSON line when DEBUG logging is on."""
        if not log.isEnabledFor(logging.DEBUG):
            return
        for event in events:
            # Shallow field copy: asdict() deep-copies and costs more than the call itself.
            fields = {f.name: getattr(event, f.name) for f in dataclass_fields(event)}
            log.debug(json.dumps(fields, default=str))
