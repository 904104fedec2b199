"""Keeps a domain endpoint registered with the gateway: register, heartbeat, deregister.

The keeper never gives up and never crashes its server: while the gateway is
unreachable it retries with capped exponential backoff; when a heartbeat answers
NOT_FOUND (the lease expired, or the gateway lost its state) it registers again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import timedelta

from domains.sdk.gateway_client import GatewayClient
from domains.sdk.results import Lease
from gateway.core.models import CapabilitySpec
from gateway.errors import GatewayError, NotFound

log = logging.getLogger(__name__)

_MIN_INTERVAL = 0.01
"""Floor for heartbeat intervals, so a gateway answering zero cannot cause a busy loop."""


class LeaseKeeper:
    """Background task holding one endpoint's lease.

    Attributes:
        lease: The lease held now; None before the first registration succeeds.
        registrations: How many times the endpoint registered (1 + re-registrations).
        heartbeats: How many heartbeats the gateway accepted.
    """

    def __init__(
        self,
        client: GatewayClient,
        *,
        owner: str,
        endpoint: str,
        catalog: Sequence[CapabilitySpec],
        lease_ttl: timedelta | None = None,
        retry_backoff: float = 0.2,
        max_retry_backoff: float = 5.0,
        call_timeout: float = 5.0,
    ) -> None:
        """Creates a keeper; `start` begins registering.

        Args:
            client: Gateway client of the domain (its domain names the registration).
            owner: Owning team.
            endpoint: `host:port` the gateway dials.
            catalog: The domain's catalog.
            lease_ttl: Requested lease length; None lets the gateway choose.
            retry_backoff: First pause in seconds after a failed call; doubles.
            max_retry_backoff: Cap on a single pause.
            call_timeout: Deadline in seconds of each call to the gateway.
        """
        self._client = client
        self._owner = owner
        self._endpoint = endpoint
        self._catalog = tuple(catalog)
        self._lease_ttl = lease_ttl
        self._retry_backoff = retry_backoff
        self._max_retry_backoff = max_retry_backoff
        self._call_timeout = call_timeout
        self._task: asyncio.Task[None] | None = None
        self._registered = asyncio.Event()
        self._registering: asyncio.Future[Lease] | None = None
        # The RegisterDomain call in flight. A stop during it waits for the answer
        # and deregisters that lease: the gateway may have granted it already (the
        # endpoint is routable before the call returns) and would keep it until it
        # expires.
        self.lease: Lease | None = None
        self.registrations = 0
        self.heartbeats = 0

    def start(self) -> None:
        """Starts registering and heartbeating in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name=f"lease {self._client.domain}")

    async def wait_registered(self) -> Lease:
        """Waits until the endpoint holds a lease (bound it with `asyncio.timeout`)."""
        await self._registered.wait()
        assert self.lease is not None  # set before the event
        return self.lease

    async def stop(self, *, deregister: bool = True) -> None:
        """Stops heartbeating and, by default, deregisters the endpoint's own lease.

        Deregistration failures are logged, not raised: the lease then expires on its own.
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        lease, self.lease = self.lease, None
        in_flight, self._registering = self._registering, None
        if lease is None and in_flight is not None and deregister:
            try:
                lease = await asyncio.wait_for(in_flight, self._call_timeout)
            except Exception:
                lease = None  # not granted, or no answer: the lease, if any, expires
        self._registered.clear()
        if not deregister or lease is None:
            return
        try:
            await self._client.deregister(lease.lease_id, timeout=self._call_timeout)
        except Exception as exc:
            log.warning("domain %s: could not deregister: %s", self._client.domain, exc)
        else:
            log.info("domain %s: deregistered %s", self._client.domain, self._endpoint)

    async def _keep(self) -> None:
        while True:
            lease = await self._register()
            await self._heartbeat_until_lost(lease)

    async def _register(self) -> Lease:
        failures = 0
        while True:
            call = asyncio.ensure_future(
                self._client.register(
                    owner=self._owner,
                    endpoint=self._endpoint,
                    catalog=self._catalog,
                    lease_ttl=self._lease_ttl,
                    timeout=self._call_timeout,
                )
            )
            self._registering = call
            try:
                # Shielded: a stop cancels this task, not the call (see `_registering`).
                lease = await asyncio.shield(call)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._registering = None
                failures += 1
                self._log_failure("register", exc, failures)
                await asyncio.sleep(self._pause(failures))
                continue
            self._registering = None
            self.lease = lease
            self.registrations += 1
            self._registered.set()
            log.info(
                "domain %s: registered %s (lease %s, heartbeat every %.1fs)",
                self._client.domain,
                self._endpoint,
                lease.lease_id,
                self._interval(lease),
            )
            return lease

    async def _heartbeat_until_lost(self, lease: Lease) -> None:
        """Heartbeats at the gateway's interval; returns when the lease is gone."""
        interval = self._interval(lease)
        failures = 0
        while True:
            await asyncio.sleep(self._pause(failures) if failures else interval)
            try:
                await self._client.heartbeat(
                    lease.lease_id, lease_ttl=lease.ttl, timeout=self._call_timeout
                )
            except NotFound:
                log.warning(
                    "domain %s: lease %s is gone; registering again",
                    self._client.domain,
                    lease.lease_id,
                )
                # Forget the dead lease so a stop now does not deregister a stale id.
                self.lease = None
                self._registered.clear()
                return
            except Exception as exc:
                failures += 1
                self._log_failure("heartbeat", exc, failures)
                continue
            failures = 0
            self.heartbeats += 1

    def _interval(self, lease: Lease) -> float:
        interval = lease.heartbeat_interval or lease.ttl / 3 or timedelta(seconds=10)
        return max(_MIN_INTERVAL, interval.total_seconds())

    def _pause(self, failures: int) -> float:
        ceiling = min(self._max_retry_backoff, self._retry_backoff * 2 ** (failures - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _log_failure(self, what: str, exc: Exception, failures: int) -> None:
        # The keeper is a daemon: whatever fails, it logs and tries again later. Log
        # the first failure and then every tenth so an outage does not flood the log;
        # anything outside the gateway's error tree is a bug and gets its traceback.
        if failures == 1 or failures % 10 == 0:
            log.warning(
                "domain %s: %s failed (%d in a row): %s: %s",
                self._client.domain,
                what,
                failures,
                type(exc).__name__,
                exc,
                exc_info=None if isinstance(exc, GatewayError) else exc,
            )
