"""What a capability handler (and every agent in its workflow) is given: the task context."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from domains.sdk.errors import InputRequired
from domains.sdk.gateway_client import GatewayClient, JSONInput
from domains.sdk.shared_context import SharedContext
from domains.sdk.task_runs import Answer
from gateway.core.models import ContextRef
from gateway.core.task import TaskInfo
from gateway.errors import DeadlineExceeded

Reporter = Callable[[str], Awaitable[None]]
"""Receives progress notes; the orchestrator streams each as a WORKING event."""

Asker = Callable[[str], Awaitable[Answer]]
"""Pauses a long-running task on a question until a human answers it."""

log = logging.getLogger(__name__)


async def _log_progress(message: str) -> None:
    log.info("progress: %s", message)


class TaskContext:
    """The running task as its handler sees it.

    Attributes:
        task: Identity and routing facts of the task (ids, caller, target, deadline,
            depth, call path).
    """

    def __init__(
        self,
        task: TaskInfo,
        *,
        reporter: Reporter | None = None,
        gateway: GatewayClient | None = None,
        asker: Asker | None = None,
    ) -> None:
        """Creates a context; the orchestrator service does this for every task.

        Args:
            task: The task being executed.
            reporter: Where progress notes go; None logs them.
            gateway: Client for nested calls; None makes `call` raise.
            asker: Pauses the task on a question (long-running tasks); None makes
                `ask` end the task input-required instead.
        """
        self.task = task
        self._reporter = reporter or _log_progress
        self._gateway = gateway
        self.context = SharedContext(task, gateway)
        """The shared context of this task's trace: attached items and write-backs."""
        self._asker = asker

    @property
    def task_id(self) -> str:
        """Id of the task being executed."""
        return self.task.task_id

    @property
    def trace_id(self) -> str:
        """End-to-end trace the task belongs to."""
        return self.task.trace_id

    @property
    def domain(self) -> str:
        """The domain executing the task."""
        return self.task.target.domain

    def time_remaining(self) -> float | None:
        """Seconds until the task's deadline, None if it has none (never negative)."""
        if self.task.deadline is None:
            return None
        return max(0.0, (self.task.deadline - datetime.now(UTC)).total_seconds())

    async def report(self, message: str) -> None:
        """Streams a progress note to the caller as a WORKING event.

        Args:
            message: A short human-readable note, for example `agent risk/scorer: started`.
        """
        await self._reporter(message)

    def require_input(self, question: str) -> NoReturn:
        """Escalates to a human: the task ends in state input-required.

        Args:
            question: What the human is asked; becomes the task's status message.

        Raises:
            domains.sdk.errors.InputRequired: Always.
        """
        raise InputRequired(question)

    async def ask(self, question: str) -> Answer:
        """Asks a human and waits for the answer (the human-escalation path).

        In a long-running task (`fedgate task submit`, `TaskService.SubmitTask`) the
        task pauses in state input-required with the question until someone the
        shared policy allows (`respond` on this capability) answers with
        `fedgate task respond`; then it resumes and this returns the answer. In a
        synchronous call (`Invoke`) nobody could answer while the caller waits: the
        task ends input-required with the question, as `require_input` does.

        Args:
            question: What the human is asked; becomes the task's status message.

        Returns:
            The answer and who gave it.

        Raises:
            domains.sdk.errors.InputRequired: The task is not a long-running one.
        """
        if self._asker is None:
            raise InputRequired(question)
        return await self._asker(question)

    async def call(
        self,
        target: str,
        input: JSONInput,
        *,
        # The timeout becomes the nested call's gRPC deadline, seen by the gateway and
        # the target domain; asyncio.timeout here would only stop waiting.
        timeout: float | None = None,  # noqa: ASYNC109
        idempotency_key: str = "",
        agent: str | None = None,
        context: Sequence[str | ContextRef] = (),
    ) -> dict[str, Any]:
        """Calls a capability of another domain through the gateway, as a nested task.

        The call joins this task's trace, names this task as its parent and echoes the
        call path, so the gateway can audit the chain and refuse cycles. Its deadline
        never outlives this task's.

        Args:
            target: `domain/capability[@version]`.
            input: JSON object or pydantic model.
            timeout: Seconds to wait; capped by this task's remaining time.
            idempotency_key: Makes retries of the nested call safe.
            agent: Agent acting inside this domain (`agent/<name>`) for the call.
            context: Context items of this trace to hand to the target (keys for the
                latest version, or `ContextRef`s); the gateway attaches what the
                policy and flow rules let the target see and redacts the rest.

        Returns:
            The nested task's JSON output.

        Raises:
            domains.sdk.errors.CallFailed: The nested task failed, was canceled or
                rejected, or needs input.
            gateway.errors.GatewayError: The gateway refused the call (for example
                `PolicyDenied`, `NotFound`, `CallChainRefused`, `DomainUnavailable`).
            RuntimeError: The domain runs without a gateway.
        """
        if self._gateway is None:
            raise RuntimeError(
                f"domain {self.domain} has no gateway configured; nested calls need one"
            )
        remaining = self.time_remaining()
        if remaining is not None:
            if remaining <= 0:
                raise DeadlineExceeded(f"task {self.task_id} has no time left to call {target}")
            timeout = remaining if timeout is None else min(timeout, remaining)
        result = await self._gateway.invoke(
            target,
            input,
            trace_id=self.trace_id,
            parent_task_id=self.task_id,
            idempotency_key=idempotency_key,
            timeout=timeout,
            call_path=self.task.call_path,
            context_refs=tuple(r if isinstance(r, ContextRef) else ContextRef(r) for r in context),
            agent=agent,
            # A long-running task outlives a gateway restart: its nested calls wait
            # (within their deadline) for the gateway to be back rather than fail.
            wait_for_ready=self.task.detached,
        )
        return result.output_or_raise()
