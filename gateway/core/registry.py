"""The registry: domains, catalogs and endpoint leases, with an in-memory routing view.

Writes go to the durable `RegistryStore` (in a worker thread). Routing reads a
snapshot held in memory so the hot path never touches the database; the snapshot
is updated after every local write and reloaded by the reaper every interval, so
other replicas' changes show up within one interval. Liveness is judged against
the lease expiry at routing time, so an expired endpoint stops receiving calls
even before the reaper deletes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import TypeVar

from gateway.core.clock import Clock, utcnow
from gateway.core.lease import LeasePolicy
from gateway.core.models import (
    CapabilitySpec,
    CapabilityTarget,
    DomainRecord,
    EndpointRecord,
)
from gateway.core.names import check_name
from gateway.core.ports import RegistryStore
from gateway.core.schema import check_schema
from gateway.errors import (
    CapabilityNotFound,
    DomainNotFound,
    DomainUnavailable,
    InvalidRequest,
    LeaseNotFound,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Lease:
    """A lease granted to an endpoint."""

    endpoint: EndpointRecord
    ttl: timedelta
    heartbeat_interval: timedelta


class Registry:
    """Registers domains and resolves capabilities to live endpoints."""

    def __init__(
        self,
        store: RegistryStore,
        leases: LeasePolicy,
        *,
        executor: Executor | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        # Store calls run here; the owner shuts it down (waiting) before closing the
        # database, so no thread still holds a connection when the engine goes.
        self._executor = executor
        self._leases = leases
        self._clock = clock
        self._view: dict[str, DomainRecord] = {}
        # Serialises read-then-replace of the view, so a slow full refresh that
        # started before a registration cannot overwrite the newer record.
        self._view_lock = asyncio.Lock()
        self._renewals: Counter[str] = Counter()
        # Lease renewals per domain since `take_renewals`: heartbeats are audited in bulk.

    async def _blocking(self, fn: Callable[[], T]) -> T:
        # Store calls block (SQLAlchemy); keep them off the event loop.
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # --- writes ---------------------------------------------------------------

    async def register(
        self,
        *,
        domain: str,
        owner: str,
        address: str,
        capabilities: Sequence[CapabilitySpec],
        requested_ttl: float | None = None,
    ) -> Lease:
        """Registers one endpoint of `domain` and replaces its catalog atomically."""
        check_name("domain", domain)
        _check_address(address)
        _check_catalog(domain, capabilities)
        ttl = self._leases.grant(requested_ttl)
        now = self._clock()
        endpoint = await self._blocking(
            lambda: self._store.register(
                domain=domain,
                owner=owner,
                address=address,
                capabilities=capabilities,
                lease_ttl=ttl,
                now=now,
            )
        )
        await self._reload(domain)
        log.info("registered %s at %s (lease %s, %ss)", domain, address, endpoint.lease_id, ttl)
        return Lease(endpoint, ttl, self._leases.heartbeat_interval(ttl))

    async def heartbeat(
        self, *, domain: str, lease_id: str, requested_ttl: float | None = None
    ) -> EndpointRecord:
        """Renews a live lease; raises `LeaseNotFound` when it is unknown or expired."""
        check_name("domain", domain)
        ttl = self._leases.grant(requested_ttl)
        now = self._clock()
        renewed = await self._blocking(
            lambda: self._store.renew(domain=domain, lease_id=lease_id, lease_ttl=ttl, now=now)
        )
        if renewed is None:
            raise LeaseNotFound(
                f"lease {lease_id!r} of domain {domain!r} is unknown or expired; register again"
            )
        self._replace_endpoint(renewed)
        self._renewals[domain] += 1
        return renewed

    def take_renewals(self) -> dict[str, int]:
        """Lease renewals per domain since the last call (for the audit trail), and resets."""
        renewals, self._renewals = dict(self._renewals), Counter()
        return renewals

    async def deregister(self, *, domain: str, lease_id: str | None) -> int:
        """Removes one endpoint (or all) of `domain` from routing; history stays."""
        check_name("domain", domain)
        removed = await self._blocking(
            lambda: self._store.deregister(domain=domain, lease_id=lease_id or None)
        )
        await self._reload(domain)
        return removed

    async def reap(self) -> list[EndpointRecord]:
        """Deletes expired endpoints and reloads the whole routing view."""
        now = self._clock()
        expired = await self._blocking(lambda: self._store.reap_expired(now=now))
        for endpoint in expired:
            log.info("lease expired: %s at %s", endpoint.domain, endpoint.address)
        await self.refresh()
        return expired

    async def refresh(self) -> None:
        """Reloads the routing view from the store (picks up other replicas' changes)."""
        async with self._view_lock:
            records = await self._blocking(self._store.list_domains)
            self._view = {r.name: r for r in records}

    async def _reload(self, domain: str) -> None:
        async with self._view_lock:
            record = await self._blocking(lambda: self._store.get_domain(domain))
            view = dict(self._view)
            if record is None:
                view.pop(domain, None)
            else:
                view[domain] = record
            self._view = view

    def _replace_endpoint(self, endpoint: EndpointRecord) -> None:
        record = self._view.get(endpoint.domain)
        if record is None:
            return
        endpoints = tuple(
            endpoint if e.address == endpoint.address else e for e in record.endpoints
        )
        self._view = {
            **self._view,
            endpoint.domain: dataclasses.replace(record, endpoints=endpoints),
        }

    # --- reads ----------------------------------------------------------------

    # Listings read the routing view, not the store: what a listing shows as live is
    # exactly what routing will use (another replica's changes appear in both within
    # one refresh interval).

    def list_domains(self) -> list[DomainRecord]:
        """Every known domain, ordered by name."""
        return [self._view[name] for name in sorted(self._view)]

    def describe(self, name: str) -> DomainRecord:
        """One domain; raises `DomainNotFound`."""
        check_name("domain", name)
        record = self._view.get(name)
        if record is None:
            raise DomainNotFound(f"domain {name!r} is not registered")
        return record

    def resolve(self, target: CapabilityTarget) -> tuple[DomainRecord, CapabilitySpec]:
        """Finds the domain and capability a call targets, from the routing view."""
        record = self._view.get(target.domain)
        if record is None:
            raise DomainNotFound(f"domain {target.domain!r} is not registered")
        capability = record.capability(target.name, target.version)
        if capability is None:
            offered = ", ".join(sorted(f"{c.name}@{c.version}" for c in record.capabilities))
            raise CapabilityNotFound(
                f"domain {target.domain!r} has no capability {target.name!r}"
                + (f" version {target.version!r}" if target.version else "")
                + f" (offers: {offered or 'nothing'})"
            )
        return record, capability

    def now(self) -> datetime:
        """The registry's clock (leases are judged against it)."""
        return self._clock()

    def live_addresses(self, domain: str) -> list[str]:
        """Addresses of the domain's endpoints whose lease holds now."""
        record = self._view.get(domain)
        if record is None:
            raise DomainNotFound(f"domain {domain!r} is not registered")
        live = [e.address for e in record.live_endpoints(self._clock())]
        if not live:
            raise DomainUnavailable(f"domain {domain!r} has no live endpoint (leases expired)")
        return live


def _check_address(address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"invalid endpoint address {address!r}: expected host:port")


def _check_catalog(domain: str, capabilities: Sequence[CapabilitySpec]) -> None:
    seen: set[tuple[str, str]] = set()
    for cap in capabilities:
        if cap.fallback is not None and (cap.fallback.domain, cap.fallback.name) == (
            domain,
            cap.name,
        ):
            raise InvalidRequest(f"capability {cap.name} cannot be its own fallback")
        key = (cap.name, cap.version)
        if key in seen:
            raise InvalidRequest(f"capability {cap.name}@{cap.version} is declared twice")
        seen.add(key)
        check_schema(cap.input_schema, f"capability {cap.name}: input schema")
        check_schema(cap.output_schema, f"capability {cap.name}: output schema")
