"""Combinators that coordinate agents inside one domain; each is itself an agent.

    sequence(a, b, c)                  a's output feeds b, b's feeds c
    parallel(a, b, merge=f)            a and b run concurrently on the same data
    conditional(pred, then, else)      picks a branch from the data
    retry(a, attempts=3)               runs a again on failure, exponential backoff + jitter
    fallback(a, b, c)                  tries b when a fails, then c
    escalate(question)                 hands the task to a human (input-required)

Escalation is not failure: `retry` and `fallback` let `InputRequired` through, so a
workflow that asks a human always stops and asks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from domains.sdk.agents import Agent
from domains.sdk.context import TaskContext
from domains.sdk.errors import Declined, InputRequired

Predicate = Callable[[Any], bool | Awaitable[bool]]
"""Chooses a branch from the data; may be sync or async."""

Merge = Callable[[list[Any]], Any]
"""Combines the results of parallel agents, given in the order the agents were listed."""

log = logging.getLogger(__name__)


def _names(agents: Sequence[Agent]) -> str:
    return ",".join(a.name for a in agents)


def _need_agents(kind: str, agents: Sequence[Agent]) -> None:
    if not agents:
        raise ValueError(f"{kind} needs at least one agent")


class Sequential(Agent):
    """Runs agents one after the other, each on the previous one's output."""

    def __init__(self, agents: Sequence[Agent], name: str) -> None:
        _need_agents("sequence", agents)
        super().__init__(name)
        self.agents = tuple(agents)

    async def run(self, ctx: TaskContext, data: Any) -> Any:
        """Threads `data` through every agent in order."""
        for step in self.agents:
            data = await step(ctx, data)
        return data


class Parallel(Agent):
    """Runs agents concurrently on the same data and merges their results."""

    def __init__(self, agents: Sequence[Agent], merge: Merge | None, name: str) -> None:
        _need_agents("parallel", agents)
        super().__init__(name)
        self.agents = tuple(agents)
        self.merge = merge

    async def run(self, ctx: TaskContext, data: Any) -> Any:
        """Runs every agent; the first failure cancels the others and is raised as is."""
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(a(ctx, data)) for a in self.agents]
        except BaseExceptionGroup as failed:
            # Callers (retry, fallback, handlers) match on exception types; a group
            # would hide the type, so raise the first real failure itself.
            first = next(
                (e for e in failed.exceptions if not isinstance(e, asyncio.CancelledError)),
                failed.exceptions[0],
            )
            raise first from None
        results = [t.result() for t in tasks]
        return self.merge(results) if self.merge is not None else results


class Conditional(Agent):
    """Runs `then` when the predicate holds for the data, else `otherwise`."""

    def __init__(
        self, predicate: Predicate, then: Agent, otherwise: Agent | None, name: str
    ) -> None:
        super().__init__(name)
        self.predicate = predicate
        self.then = then
        self.otherwise = otherwise

    async def run(self, ctx: TaskContext, data: Any) -> Any:
        """Evaluates the predicate; with no `otherwise`, a false predicate passes data on."""
        verdict = self.predicate(data)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict:
            return await self.then(ctx, data)
        if self.otherwise is not None:
            return await self.otherwise(ctx, data)
        return data


class Retry(Agent):
    """Runs an agent again when it fails with one of `retry_on`."""

    def __init__(
        self,
        agent: Agent,
        *,
        attempts: int,
        backoff: float,
        max_backoff: float,
        retry_on: tuple[type[BaseException], ...],
        name: str,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"retry needs at least one attempt, got {attempts}")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("retry backoff must not be negative")
        super().__init__(name)
        self.agent = agent
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.retry_on = retry_on

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Exponential, capped at `max_backoff`, with jitter in [delay/2, delay] so that
        replicas retrying the same dependency do not retry in lockstep.
        """
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def run(self, ctx: TaskContext, data: Any) -> Any:
        """Tries up to `attempts` times; the last error propagates."""
        for attempt in range(1, self.attempts + 1):
            try:
                return await self.agent(ctx, data)
            except InputRequired:
                raise
            except self.retry_on as exc:
                if attempt == self.attempts:
                    raise
                pause = self.delay(attempt)
                remaining = ctx.time_remaining()
                if remaining is not None and remaining <= pause:
                    # Sleeping past the deadline cannot succeed; report the real error.
                    raise
                await ctx.report(
                    f"agent {ctx.domain}/{self.name}: attempt {attempt}/{self.attempts} "
                    f"failed ({type(exc).__name__}: {exc}); retrying in {pause:.3f}s"
                )
                await asyncio.sleep(pause)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


class Fallback(Agent):
    """Tries agents in order until one succeeds."""

    def __init__(
        self, agents: Sequence[Agent], on: tuple[type[BaseException], ...], name: str
    ) -> None:
        _need_agents("fallback", agents)
        super().__init__(name)
        self.agents = tuple(agents)
        self.on = on

    async def run(self, ctx: TaskContext, data: Any) -> Any:
        """Returns the first success; if all fail, raises the last error with notes
        naming the earlier ones."""
        failures: list[BaseException] = []
        for index, candidate in enumerate(self.agents):
            try:
                return await candidate(ctx, data)
            except InputRequired:
                raise
            except self.on as exc:
                failures.append(exc)
                if index + 1 < len(self.agents):
                    await ctx.report(
                        f"agent {ctx.domain}/{self.name}: {candidate.name} failed; "
                        f"trying {self.agents[index + 1].name}"
                    )
        last = failures[-1]
        for earlier, error in zip(self.agents, failures[:-1], strict=False):
            last.add_note(f"fallback: {earlier.name} failed first: {type(error).__name__}: {error}")
        raise last


class Escalate(Agent):
    """Hands the decision to a human (`TaskContext.ask`).

    In a long-running task it waits for the answer: `{"approved": true}` continues
    with the data plus `approved_by` (who answered); anything else fails the task
    as declined. In a synchronous call the task ends input-required.
    """

    def __init__(self, question: str | Callable[[Any], str], name: str) -> None:
        super().__init__(name)
        self.question = question

    async def run(self, ctx: TaskContext, data: Any) -> Any:
        """Asks the question (computed from the data if callable) and applies the answer."""
        question = self.question(data) if callable(self.question) else self.question
        answer = await ctx.ask(question)
        if answer.input.get("approved") is not True:
            note = answer.input.get("reason")
            raise Declined(
                f"{answer.responder} declined: {question}" + (f" ({note})" if note else "")
            )
        return {**data, "approved_by": answer.responder} if isinstance(data, dict) else data


def sequence(*agents: Agent, name: str | None = None) -> Agent:
    """Runs agents one after the other; each gets the previous one's output.

    Args:
        *agents: At least one agent.
        name: Name in progress reports; defaults to `sequence(a,b,...)`.
    """
    return Sequential(agents, name or f"sequence({_names(agents)})")


def parallel(*agents: Agent, merge: Merge | None = None, name: str | None = None) -> Agent:
    """Runs agents concurrently on the same data.

    The first failure cancels the agents still running and propagates unchanged.

    Args:
        *agents: At least one agent.
        merge: Combines the results (listed in agent order); None returns the list.
        name: Name in progress reports; defaults to `parallel(a,b,...)`.
    """
    return Parallel(agents, merge, name or f"parallel({_names(agents)})")


def conditional(
    predicate: Predicate, then: Agent, otherwise: Agent | None = None, *, name: str | None = None
) -> Agent:
    """Picks a branch from the data.

    Args:
        predicate: Sync or async function of the data.
        then: Runs when the predicate is true.
        otherwise: Runs when it is false; None passes the data on unchanged.
        name: Name in progress reports; defaults to `conditional(then,otherwise)`.
    """
    branches = [then] if otherwise is None else [then, otherwise]
    return Conditional(predicate, then, otherwise, name or f"conditional({_names(branches)})")


def retry(
    agent: Agent,
    *,
    attempts: int = 3,
    backoff: float = 0.05,
    max_backoff: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    name: str | None = None,
) -> Agent:
    """Runs an agent again when it fails, with exponential backoff and jitter.

    Retries stop early when the next pause would outlast the task's deadline.
    `InputRequired` is never retried.

    Args:
        agent: The agent to run.
        attempts: Total attempts, at least 1.
        backoff: Pause in seconds after the first failure; doubles each time.
        max_backoff: Cap on a single pause.
        retry_on: Exception types worth retrying; others propagate at once.
        name: Name in progress reports; defaults to `retry(a)`.
    """
    return Retry(
        agent,
        attempts=attempts,
        backoff=backoff,
        max_backoff=max_backoff,
        retry_on=retry_on,
        name=name or f"retry({agent.name})",
    )


def fallback(
    primary: Agent,
    *alternatives: Agent,
    on: tuple[type[BaseException], ...] = (Exception,),
    name: str | None = None,
) -> Agent:
    """Tries `primary`, then each alternative in order, until one succeeds.

    If all fail, the last error propagates with notes naming the earlier failures.
    `InputRequired` is not a failure and propagates at once.

    Args:
        primary: The agent tried first.
        *alternatives: Agents tried next, in order.
        on: Exception types that move on to the next agent; others propagate.
        name: Name in progress reports; defaults to `fallback(a,b,...)`.
    """
    agents = (primary, *alternatives)
    return Fallback(agents, on, name or f"fallback({_names(agents)})")


def escalate(question: str | Callable[[Any], str], *, name: str = "escalate") -> Agent:
    """An agent that asks a human to approve (see `Escalate`).

    In a long-running task it pauses until answered; in a synchronous call the task
    ends input-required with the question.

    Args:
        question: The question, or a function of the data that words it.
        name: Name in progress reports.
    """
    return Escalate(question, name)
