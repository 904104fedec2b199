"""Seams between the core and the outside world, as `typing.Protocol`s.

The composition root (`gateway.server`) wires real implementations in; tests may
wire others. Stores are synchronous (SQLAlchemy) and are called from a worker
thread by the core, never on the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from gateway.core.audit_event import AuditEvent, AuditReceipt
from gateway.core.decision import Action, Decision
from gateway.core.models import (
    CapabilitySpec,
    DomainRecord,
    EndpointRecord,
    Payload,
    Principal,
    TaskUpdate,
)
from gateway.core.task import TaskInfo


class RegistryStore(Protocol):
    """Durable registry of domains, catalogs and endpoint leases.

    Every method is one transaction. Implementations raise
    `gateway.errors.StoreUnavailable` when the database cannot be reached.
    """

    def register(
        self,
        *,
        domain: str,
        owner: str,
        address: str,
        capabilities: Sequence[CapabilitySpec],
        lease_ttl: timedelta,
        now: datetime,
    ) -> EndpointRecord:
        """Upserts the domain, replaces its catalog atomically and (re)leases the endpoint.

        An endpoint is identified by (domain, address); registering it again issues
        a fresh lease id and expiry.
        """
        ...

    def renew(
        self, *, domain: str, lease_id: str, lease_ttl: timedelta, now: datetime
    ) -> EndpointRecord | None:
        """Extends a lease that has not expired; None if unknown or already expired."""
        ...

    def deregister(self, *, domain: str, lease_id: str | None) -> int:
        """Removes one endpoint (by lease) or all endpoints of the domain; returns the count.

        The domain row and its catalog stay (history is never deleted).
        """
        ...

    def reap_expired(self, *, now: datetime) -> list[EndpointRecord]:
        """Deletes endpoints whose lease ran out at `now` and returns them."""
        ...

    def get_domain(self, name: str) -> DomainRecord | None:
        """One domain with its catalog and endpoints, or None."""
        ...

    def list_domains(self) -> list[DomainRecord]:
        """Every known domain ordered by name, with catalogs and endpoints."""
        ...


class DomainTransport(Protocol):
    """Runs a task on one endpoint of a domain (implemented over gRPC)."""

    def execute(
        self, address: str, task: TaskInfo, input: Payload, time_limit: float | None
    ) -> AsyncGenerator[TaskUpdate, None]:
        """Streams the task's updates from the endpoint; the last one is final.

        Raises `DomainUnavailable` when the endpoint cannot be reached and
        `DeadlineExceeded` when `time_limit` (seconds) runs out.
        """
        ...

    async def cancel(self, address: str, task_id: str, reason: str) -> bool:
        """Asks the endpoint to cancel a task; True if it was running there."""
        ...

    async def close(self) -> None:
        """Closes every channel."""
        ...


class PolicyDecider(Protocol):
    """Decides whether a principal may act on an object of a domain."""

    def decide(self, principal: Principal, domain: str, obj: str, action: Action) -> Decision:
        """The decision, with the deciding rule; never raises for a well-formed request."""
        ...


class AuditSink(Protocol):
    """Records audit events. In strict mode it returns only once they are durable."""

    async def record(self, events: list[AuditEvent]) -> Sequence[AuditReceipt]:
        """Records `events` in order; raises `AuditUnavailable` when it cannot.

        Returns one receipt (log position and leaf hash) per recorded event, in
        order, or none from sinks that keep no log.
        """
        ...
