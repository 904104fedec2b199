"""Agents: named units with one narrow job inside a domain's workflow.

An agent takes data, does its job and returns data. Agents compose with the
combinators of `domains.sdk.workflow`, which are agents themselves. Calling an agent
(`await agent(ctx, data)`) reports its progress through `TaskContext.report`, so the
caller of the task sees every step; subclasses implement `run`.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from domains.sdk.context import TaskContext
from domains.sdk.errors import InputRequired

AgentFunction = Callable[[TaskContext, Any], Awaitable[Any]]
"""`async def job(ctx, data) -> data`, the body of a function agent."""


class Agent(abc.ABC):
    """A named unit of work: `await agent(ctx, data)` returns new data.

    Attributes:
        name: Short name shown in progress reports (`agent <domain>/<name>: ...`).
    """

    def __init__(self, name: str) -> None:
        """Creates an agent.

        Args:
            name: Short name shown in progress reports; must not be empty.
        """
        if not name:
            raise ValueError("an agent needs a name")
        self.name = name

    @abc.abstractmethod
    async def run(self, ctx: TaskContext, data: Any) -> Any:
        """Does the agent's job; implemented by subclasses.

        Args:
            ctx: The running task.
            data: Input from the previous step.

        Returns:
            Output for the next step.
        """

    async def __call__(self, ctx: TaskContext, data: Any) -> Any:
        """Runs the agent and reports started / done / failed / needs input.

        Errors propagate unchanged after being reported.
        """
        label = f"agent {ctx.domain}/{self.name}"
        await ctx.report(f"{label}: started")
        try:
            result = await self.run(ctx, data)
        except InputRequired as exc:
            await ctx.report(f"{label}: needs input: {exc.question}")
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await ctx.report(f"{label}: failed: {type(exc).__name__}: {exc}")
            raise
        await ctx.report(f"{label}: done")
        return result

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class FunctionAgent(Agent):
    """An agent whose job is one async function."""

    def __init__(self, name: str, function: AgentFunction) -> None:
        """Wraps `function` as an agent.

        Args:
            name: Short name shown in progress reports.
            function: `async def (ctx, data) -> data`.

        Raises:
            TypeError: `function` is not an async function.
        """
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"agent {name}: {function!r} must be an async function")
        super().__init__(name)
        self._function = function

    async def run(self, ctx: TaskContext, data: Any) -> Any:
        """Calls the wrapped function."""
        return await self._function(ctx, data)


def agent(name: str | None = None) -> Callable[[AgentFunction], FunctionAgent]:
    """Decorator that turns an async function into an agent.

    Example:
        ```python
        @agent("scorer")
        async def scorer(ctx: TaskContext, data: dict) -> dict:
            return {**data, "score": 0.2}
        ```

    Args:
        name: Agent name; defaults to the function's name with `_` as `-`.
    """

    def wrap(function: AgentFunction) -> FunctionAgent:
        return FunctionAgent(name or function.__name__.replace("_", "-"), function)

    return wrap
