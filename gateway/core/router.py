"""Routes a validated, authorised invocation to a healthy endpoint of the target domain.

Per attempt: choose among live (leased), healthy (not ejected) endpoints whose breaker
for this caller admits the call, the one with the fewest calls in flight. A failure to
reach the domain counts against the endpoint's health and breaker. Idempotent
capabilities are retried on another endpoint with backoff, within the deadline; others
never run twice through the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import timedelta

from gateway.core.balancer import Balancer
from gateway.core.circuit_breaker import BreakerBoard, BreakerPolicy
from gateway.core.clock import Clock, utcnow
from gateway.core.endpoint_health import EjectionPolicy, EndpointHealth
from gateway.core.invocation import Invocation
from gateway.core.models import DEADLINE_EXCEEDED_CODE, TaskUpdate
from gateway.core.ports import DomainTransport
from gateway.core.registry import Registry
from gateway.core.retry_policy import RetryPolicy
from gateway.errors import DeadlineExceeded, DomainUnavailable

log = logging.getLogger(__name__)


class Router:
    """Chooses endpoints, streams the task's updates, retries what is safe to retry."""

    def __init__(
        self,
        registry: Registry,
        transport: DomainTransport,
        *,
        balancer: Balancer | None = None,
        default_timeout: float = 30.0,
        retries: RetryPolicy | None = None,
        breakers: BreakerBoard | None = None,
        health: EndpointHealth | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._registry = registry
        self._transport = transport
        self._balancer = balancer or Balancer()
        self._default_timeout = default_timeout
        self._retries = retries or RetryPolicy()
        self.breakers = breakers or BreakerBoard(BreakerPolicy())
        self.health = health or EndpointHealth(EjectionPolicy())
        self._clock = clock

    def timeout_for(self, invocation: Invocation) -> float:
        """The caller's remaining deadline, else the capability's default, else ours."""
        if invocation.timeout is not None:
            return invocation.timeout
        capability = invocation.capability
        if capability is not None and capability.default_timeout > timedelta(0):
            return capability.default_timeout.total_seconds()
        return self._default_timeout

    def forget(self, address: str) -> None:
        """Drops health and breaker state of an endpoint that left routing."""
        self.health.forget(address)
        self.breakers.forget(address)

    async def execute(self, invocation: Invocation) -> AsyncGenerator[TaskUpdate, None]:
        """Runs the task and yields its updates, retrying idempotent work on failure."""
        task = invocation.require_task()
        idempotent = invocation.require_capability().idempotent
        attempts = self._retries.max_attempts if idempotent else 1
        tried: set[str] = set()
        for attempt in range(1, attempts + 1):
            address = self._choose(invocation, tried)
            tried.add(address)
            invocation.endpoints.append(address)
            breaker = self.breakers.get(task.caller.domain, address)
            settled = False
            try:
                # The attempt streams inline (not through a generator of its own): one
                # async generator fewer to create, step through and close on every call.
                updates = self._transport.execute(
                    address, task, invocation.input, self._remaining(invocation)
                )
                # Closing the stream as soon as we stop reading cancels the domain's work.
                async with aclosing(updates):
                    with self._balancer.track(address):
                        async for update in updates:
                            if (
                                update.error is not None
                                and update.error.code == DEADLINE_EXCEEDED_CODE
                            ):
                                # The domain's own timer and the gRPC deadline race; either
                                # way the caller learns the same thing: DEADLINE_EXCEEDED.
                                raise DeadlineExceeded(update.error.message or update.message)
                            if update.final:
                                # Counted before yielding: the consumer may stop reading at
                                # the final update, and nothing after the yield would run then.
                                breaker.record(True)
                                self.health.record_call(address, True)
                                settled = True
                            yield update
            except DomainUnavailable as exc:
                breaker.record(False)
                self.health.record_call(address, False)
                settled = True
                pause = self._retries.backoff(attempt)
                if attempt == attempts or not self._time_left(invocation, pause):
                    raise
                log.info("retrying %s (attempt %d failed: %s)", task.target, attempt, exc.message)
                await asyncio.sleep(pause)
                continue
            except DeadlineExceeded:
                breaker.record(False)
                settled = True
                raise
            finally:
                if not settled:
                    if self._remaining(invocation) <= 0:
                        # Canceled because the deadline ran out while the endpoint said
                        # nothing: a hanging endpoint counts as failing.
                        breaker.record(False)
                        self.health.record_call(address, False)
                    else:
                        # Canceled by the caller: no verdict on the endpoint, but a
                        # half-open trial slot must not stay taken.
                        breaker.abandon()
            return

    def _choose(self, invocation: Invocation, tried: set[str]) -> str:
        task = invocation.require_task()
        live = self._registry.live_addresses(task.target.domain)
        healthy = [a for a in live if self.health.healthy(a)] or live
        # Prefer endpoints this call has not failed on yet; fall back to all of them.
        fresh = [a for a in healthy if a not in tried] or healthy
        for address in self._balancer.order(fresh):
            if self.breakers.get(task.caller.domain, address).allow():
                return address
        wait = min(self.breakers.get(task.caller.domain, a).retry_after() for a in fresh)
        raise DomainUnavailable(
            f"circuit open: calls from {task.caller.domain!r} to {task.target.domain!r} "
            f"fail fast for about {wait:.1f}s more after repeated failures"
        )

    def _remaining(self, invocation: Invocation) -> float:
        deadline = invocation.require_task().deadline
        if deadline is None:
            return self.timeout_for(invocation)
        return max(0.0, (deadline - self._clock()).total_seconds())

    def _time_left(self, invocation: Invocation, pause: float) -> bool:
        # Retrying only makes sense if, after the pause, some time remains to run.
        return self._remaining(invocation) > pause + 0.01
