"""The request chain: runs the steps in order, routes, and finishes the steps in reverse."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from gateway.core.invocation import Invocation, Outcome
from gateway.core.invoke_steps import InvokeStep
from gateway.core.models import TaskError, TaskState, TaskUpdate
from gateway.core.router import Router
from gateway.errors import GatewayError, TaskCanceled

log = logging.getLogger(__name__)

_NO_FINAL = TaskUpdate(
    state=TaskState.FAILED,
    message="the domain ended the task stream without a final event",
    error=TaskError("protocol_error", "the domain ended the task stream without a final event"),
    final=True,
)


class InvokePipeline:
    """identity -> validate -> policy -> audit(request) -> route -> invoke -> audit(outcome)."""

    def __init__(self, steps: Sequence[InvokeStep], router: Router) -> None:
        self._steps = tuple(steps)
        self._router = router

    async def run(self, invocation: Invocation) -> AsyncIterator[TaskUpdate]:
        """Yields a SUBMITTED update, the domain's updates, and last the final update.

        The final update is held back until every step's `after` has run, so the
        outcome is recorded before the caller can see it. Errors propagate as
        `GatewayError`s after the same bookkeeping.
        """
        invocation.started_ns = time.monotonic_ns()
        entered: list[InvokeStep] = []
        final: TaskUpdate | None = None
        try:
            for step in self._steps:
                await step.before(invocation)
                entered.append(step)
            yield TaskUpdate(state=TaskState.SUBMITTED, message="accepted by the gateway")
            async with aclosing(self._router.execute(invocation)) as updates:
                async for update in updates:
                    if update.final:
                        final = update
                        break
                    yield update
        except GatewayError as exc:
            await self._finish(entered, invocation, Outcome(error=exc))
            raise
        except BaseException:
            # Cancellation by the caller (or a bug): still finish the steps so the
            # task leaves the table and its end is recorded.
            await self._finish(entered, invocation, Outcome(error=TaskCanceled("call interrupted")))
            raise
        final = final or _NO_FINAL
        await self._finish(entered, invocation, Outcome(final=final))
        yield final

    async def _finish(
        self, entered: list[InvokeStep], invocation: Invocation, outcome: Outcome
    ) -> None:
        elapsed_us = (time.monotonic_ns() - invocation.started_ns) // 1000
        outcome = Outcome(final=outcome.final, error=outcome.error, duration_us=elapsed_us)
        for step in reversed(entered):
            await step.after(invocation, outcome)
