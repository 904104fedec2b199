"""The request chain: runs the steps in order, routes, and finishes the steps in reverse."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from gateway.core.idempotency import Replay, replayed_task
from gateway.core.invocation import Invocation, Outcome
from gateway.core.invoke_steps import InvokeStep
from gateway.core.models import CapabilityTarget, TaskError, TaskState, TaskUpdate
from gateway.core.router import Router
from gateway.errors import DomainUnavailable, GatewayError, TaskCanceled

log = logging.getLogger(__name__)

_NO_FINAL = TaskUpdate(
    state=TaskState.FAILED,
    message="the domain ended the task stream without a final event",
    error=TaskError("protocol_error", "the domain ended the task stream without a final event"),
    final=True,
)

_SUBMITTED = TaskUpdate(state=TaskState.SUBMITTED, message="accepted by the gateway")
"""The first update of every dispatched call (immutable, so one instance serves all)."""


@dataclass(slots=True)
class _Routing:
    final: TaskUpdate | None = None
    progressed: bool = False


class InvokePipeline:
    """identity -> validate -> policy -> audit(request) -> route -> invoke -> audit(outcome)."""

    def __init__(self, steps: Sequence[InvokeStep], router: Router) -> None:
        self._steps = tuple(steps)
        self._router = router

    async def run(self, invocation: Invocation) -> AsyncGenerator[TaskUpdate, None]:
        """Yields a SUBMITTED update, the domain's updates, and last the final update.

        The final update is held back until every step's `after` has run, so the
        outcome is recorded before the caller can see it. Errors propagate as
        `GatewayError`s after the same bookkeeping. When the target is unavailable
        before it did anything and its capability names a fallback, the target-bound
        steps run again for the fallback and it serves the call (once: a fallback's
        own fallback is not followed).
        """
        invocation.started_ns = time.monotonic_ns()
        entered: list[InvokeStep] = []
        routing = _Routing()
        try:
            try:
                for step in self._steps:
                    await step.before(invocation)
                    entered.append(step)
            except Replay as replay:
                # The idempotency key already has an outcome: answer it, run nothing.
                invocation.task = replayed_task(invocation, replay.outcome)
                invocation.replayed = True
                routing.final = replay.outcome.final
            else:
                async for update in self._dispatch(invocation, routing):
                    yield update
        except GatewayError as exc:
            await self._finish(entered, invocation, error=exc)
            raise
        except BaseException:
            if invocation.detached and invocation.dispatched and routing.final is None:
                # A long-running task outlives this gateway's stream (it is stopping):
                # the domain keeps running it, and the gateway that re-attaches to it
                # records its end. Recording "interrupted" here would be untrue.
                raise
            # Cancellation by the caller (or a bug): still finish the steps so the
            # task leaves the table and its end is recorded.
            await self._finish(entered, invocation, error=TaskCanceled("call interrupted"))
            raise
        done = routing.final or _NO_FINAL
        await self._finish(entered, invocation, final=done)
        yield done

    async def _dispatch(
        self, invocation: Invocation, routing: _Routing
    ) -> AsyncIterator[TaskUpdate]:
        yield _SUBMITTED
        invocation.dispatched = True
        redirected = False
        while True:
            try:
                # Yields the non-final updates; the final one is kept in `routing` (held
                # back). Routed inline rather than through a generator of its own: one
                # generator fewer to create, step through and close on every call.
                async with aclosing(self._router.execute(invocation)) as updates:
                    async for update in updates:
                        if update.final:
                            routing.final = update
                            return
                        routing.progressed = True
                        yield update
                return
            except DomainUnavailable as exc:
                fallback = invocation.require_capability().fallback
                # A target that already reported progress was reached: running the
                # fallback too could do the work twice. A fallback's own failure ends it.
                if redirected or fallback is None or routing.progressed:
                    raise
                yield TaskUpdate(
                    state=TaskState.WORKING,
                    message=f"{invocation.target} unavailable ({exc.message}); "
                    f"falling back to {fallback}",
                )
                await self._redirect(invocation, fallback, exc.message)
                redirected = True

    async def _redirect(
        self, invocation: Invocation, fallback: CapabilityTarget, reason: str
    ) -> None:
        log.info("%s unavailable (%s): falling back to %s", invocation.target, reason, fallback)
        invocation.fallback_from = invocation.target
        invocation.fallback_reason = reason
        invocation.target = fallback
        for step in self._steps:
            if step.per_target:
                await step.before(invocation)

    async def _finish(
        self,
        entered: list[InvokeStep],
        invocation: Invocation,
        *,
        final: TaskUpdate | None = None,
        error: GatewayError | None = None,
    ) -> None:
        elapsed_us = (time.monotonic_ns() - invocation.started_ns) // 1000
        outcome = Outcome(final=final, error=error, duration_us=elapsed_us)
        for step in reversed(entered):
            await step.after(invocation, outcome)
