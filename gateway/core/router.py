"""Routes a validated, authorised invocation to one live endpoint of the target domain."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import timedelta

from gateway.core.balancer import Balancer
from gateway.core.invocation import Invocation
from gateway.core.models import DEADLINE_EXCEEDED_CODE, TaskUpdate
from gateway.core.ports import DomainTransport
from gateway.core.registry import Registry
from gateway.errors import DeadlineExceeded


class Router:
    """Chooses an endpoint and streams the task's updates from it."""

    def __init__(
        self,
        registry: Registry,
        transport: DomainTransport,
        *,
        balancer: Balancer | None = None,
        default_timeout: float = 30.0,
    ) -> None:
        self._registry = registry
        self._transport = transport
        self._balancer = balancer or Balancer()
        self._default_timeout = default_timeout

    def timeout_for(self, invocation: Invocation) -> float:
        """The caller's remaining deadline, else the capability's default, else ours."""
        if invocation.timeout is not None:
            return invocation.timeout
        capability = invocation.capability
        if capability is not None and capability.default_timeout > timedelta(0):
            return capability.default_timeout.total_seconds()
        return self._default_timeout

    async def execute(self, invocation: Invocation) -> AsyncGenerator[TaskUpdate, None]:
        """Runs the task on the least-loaded live endpoint and yields its updates."""
        task = invocation.require_task()
        address = self._balancer.pick(self._registry.live_addresses(task.target.domain))
        updates = self._transport.execute(
            address, task, invocation.input, self.timeout_for(invocation)
        )
        # Closing the stream as soon as we stop reading cancels the domain's work.
        async with aclosing(updates):
            with self._balancer.track(address):
                async for update in updates:
                    if update.error is not None and update.error.code == DEADLINE_EXCEEDED_CODE:
                        # The domain's own timer and the gRPC deadline race; either way
                        # the caller learns the same thing: DEADLINE_EXCEEDED.
                        raise DeadlineExceeded(update.error.message or update.message)
                    yield update
