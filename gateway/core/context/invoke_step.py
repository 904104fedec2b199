"""The request chain's context step: resolves an Invoke's context refs for its target.

Runs after the policy and validation steps and before audit(request): each
referenced item of the task's trace is decided for the *target* domain (policy,
flow rules, the capability's `accepts`), attached to the task whole or redacted,
and its `context.read`/`context.redacted` record goes into the same durable write
as the task's request record, so nothing crosses unrecorded. Every task also gets
a write grant bounding its write-backs by the capability's declared classification.
"""

from __future__ import annotations

import dataclasses

from gateway.core.context.space import ContextSpace
from gateway.core.invocation import Invocation, Outcome


class ContextStep:
    """Attaches the allowed context to the task and signs its write grant."""

    per_target = True  # a fallback target gets its own decisions

    def __init__(self, space: ContextSpace) -> None:
        self._space = space

    async def before(self, invocation: Invocation) -> None:
        task = invocation.require_task()
        capability = invocation.require_capability()
        views, events = (
            await self._space.attach(task, capability, invocation.context_refs)
            if invocation.context_refs
            else ([], [])
        )
        invocation.context_events = events
        invocation.task = dataclasses.replace(
            task,
            context=tuple(views),
            context_grant=self._space.grant_for(task, capability),
        )

    async def after(self, invocation: Invocation, outcome: Outcome) -> None:
        return None
