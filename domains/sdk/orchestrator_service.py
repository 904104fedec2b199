"""The `DomainOrchestrator` gRPC service over a `Domain`: what the gateway calls.

Execute admits a task (strict conversion, capability lookup, pydantic validation),
then runs the handler as its own asyncio task, registered by task id so `Cancel`
can reach it, and streams its events: WORKING first, progress notes, then exactly
one final event. A failing handler fails its task, never the server. A detached
(long-running) task outlives the stream: `Attach` follows it again from a position,
and `Respond` answers the question it paused on (`TaskContext.ask`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from pydantic import BaseModel, ValidationError

from domains.sdk.capability import Capability
from domains.sdk.context import TaskContext
from domains.sdk.domain import Domain
from domains.sdk.errors import InputRequired
from domains.sdk.gateway_client import GatewayClient
from domains.sdk.task_runs import DEFAULT_RETENTION, Answer, TaskRun, TaskRuns
from federation.v1 import common_pb2 as pb
from federation.v1 import orchestrator_pb2 as orch
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.core.models import (
    DEADLINE_EXCEEDED_CODE,
    Payload,
    TaskError,
    TaskState,
    TaskUpdate,
)
from gateway.core.task import TaskInfo
from gateway.errors import (
    CapabilityNotFound,
    GatewayError,
    InvalidRequest,
    PolicyDenied,
    TaskNotFound,
    TaskNotWaiting,
)
from gateway.services import convert, metadata, status_map
from gateway.services.context_convert import view_from_proto
from gateway.services.identity import PEER_SPIFFE_ID

log = logging.getLogger(__name__)

ServicerContext = grpc.aio.ServicerContext[Any, Any]

SERVICE_NAME = orch.DESCRIPTOR.services_by_name["DomainOrchestrator"].full_name
"""Full gRPC name of the service, for health checks and reflection."""


@dataclass(frozen=True, slots=True)
class _Admitted:
    task: TaskInfo
    capability: Capability
    request: BaseModel
    timeout: float


class OrchestratorService(orch_grpc.DomainOrchestratorServicer):
    """Serves one domain's capabilities to the gateway."""

    def __init__(
        self,
        domain: Domain,
        *,
        gateway: GatewayClient | None = None,
        only_caller: str = "",
        journal: Path | None = None,
        retention: float = DEFAULT_RETENTION,
    ) -> None:
        """Creates the service.

        Args:
            domain: The domain whose capabilities are served.
            gateway: Client that handlers' nested `ctx.call`s go through; None when the
                domain runs without a gateway.
            only_caller: SPIFFE ID (of the gateway) that alone may run and cancel tasks,
                checked against the verified client certificate; empty accepts any
                caller (insecure mode, tests).
            journal: File that gets one line per task whose handler starts
                (`task_id capability idempotency_key`): a domain-side record to prove
                that no task ran twice. None keeps no journal.
            retention: Seconds a detached task's events are kept after it ended,
                for a gateway that re-attaches late.
        """
        self.domain = domain
        self._journal = journal
        self._gateway = gateway
        self._only_caller = only_caller.encode()
        self._runs = TaskRuns(retention)

    @property
    def running(self) -> tuple[str, ...]:
        """Ids of the tasks whose handlers are running now."""
        return self._runs.running()

    async def Describe(  # noqa: N802 - gRPC method names are PascalCase
        self, request: orch.DescribeRequest, context: ServicerContext
    ) -> orch.DescribeResponse:
        """Returns the domain's identity and catalog."""
        return orch.DescribeResponse(
            domain=self.domain.name,
            owner=self.domain.owner,
            capabilities=[convert.capability_to_proto(c) for c in self.domain.catalog()],
        )

    async def Execute(  # noqa: N802
        self, request: orch.ExecuteRequest, context: ServicerContext
    ) -> AsyncIterator[pb.TaskEvent]:
        """Runs one task and streams its events; the last one is final.

        Aborts before running with INVALID_ARGUMENT (malformed task, invalid input),
        NOT_FOUND (unknown capability or version) or ALREADY_EXISTS (task id known).
        A detached task keeps running when this stream ends (see `Attach`).
        """
        try:
            self._check_caller(context)
            admitted = self._admit(request, context)
        except GatewayError as exc:
            await context.abort(status_map.status_for(exc), exc.message)
        task = admitted.task
        run = self._runs.start(task.task_id, detached=request.detached)
        if run is None:
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"task {task.task_id} is already running (or ran) here",
            )

        async def report(message: str) -> None:
            run.add(TaskUpdate(TaskState.WORKING, message))

        async def ask(question: str) -> Answer:
            return await self._ask(run, question)

        ctx = TaskContext(
            task, reporter=report, gateway=self._gateway, asker=ask if run.detached else None
        )
        run.add(TaskUpdate(TaskState.WORKING, "started"))
        run.runner = asyncio.create_task(self._run(admitted, ctx, run), name=f"task {task.task_id}")
        try:
            async for event in run.follow(0):
                yield event
        finally:
            # Reached on completion, on Cancel, and when the caller goes away or the
            # deadline passes (gRPC cancels this generator): the handler of a task run
            # for Invoke must not outlive its stream; a detached one carries on.
            if not run.detached:
                self._runs.discard(task.task_id)
                run.runner.cancel()

    async def Attach(  # noqa: N802
        self, request: orch.AttachRequest, context: ServicerContext
    ) -> AsyncIterator[pb.TaskEvent]:
        """Streams a known task's events after `after_sequence`, until its final one."""
        try:
            self._check_caller(context)
        except GatewayError as exc:
            await context.abort(status_map.status_for(exc), exc.message)
        run = self._runs.get(request.task_id)
        if run is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"domain {self.domain.name} does not know task {request.task_id}",
            )
        async for event in run.follow(request.after_sequence):
            yield event

    async def Respond(  # noqa: N802
        self, request: orch.RespondRequest, context: ServicerContext
    ) -> orch.RespondResponse:
        """Answers a task waiting for input; it resumes."""
        try:
            self._check_caller(context)
            run = self._runs.get(request.task_id)
            if run is None:
                raise TaskNotFound(
                    f"domain {self.domain.name} does not know task {request.task_id}"
                )
            if run.answer is None or run.answer.done():
                raise TaskNotWaiting(f"task {request.task_id} is not waiting for input")
            payload = convert.payload_from_proto(request.input)
            if payload.json is None:
                raise InvalidRequest("the answer must be a JSON object")
            run.answer.set_result(Answer(dict(payload.json), request.responder))
        except GatewayError as exc:
            await context.abort(status_map.status_for(exc), exc.message)
        return orch.RespondResponse()

    async def Cancel(  # noqa: N802
        self, request: orch.CancelRequest, context: ServicerContext
    ) -> orch.CancelResponse:
        """Cancels a running task; its stream ends with a CANCELED event."""
        try:
            self._check_caller(context)
        except GatewayError as exc:
            await context.abort(status_map.status_for(exc), exc.message)
        run = self._runs.get(request.task_id)
        if run is None or run.runner is None or run.runner.done():
            return orch.CancelResponse(found=False)
        log.info("canceling task %s: %s", request.task_id, request.reason or "no reason given")
        run.cancel_reason = request.reason
        run.runner.cancel()
        return orch.CancelResponse(found=True)

    async def shutdown(self) -> None:
        """Cancels every running handler and waits for them to finish."""
        runners = self._runs.runners()
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)

    async def _ask(self, run: TaskRun, question: str) -> Answer:
        # The task pauses INPUT_REQUIRED until `Respond` answers; the answer is
        # reported as the event that resumes it.
        run.answer = asyncio.get_running_loop().create_future()
        run.add(TaskUpdate(TaskState.INPUT_REQUIRED, question))
        try:
            answer = await run.answer
        finally:
            run.answer = None
        run.add(TaskUpdate(TaskState.WORKING, f"answered by {answer.responder}"))
        return answer

    # --- admission ---------------------------------------------------------

    def _check_caller(self, context: ServicerContext) -> None:
        # Tasks come only through the gateway, which decided policy and recorded
        # them; another domain holding a valid certificate must not bypass it.
        if self._only_caller and list(context.auth_context().get(PEER_SPIFFE_ID, ())) != [
            self._only_caller
        ]:
            raise PolicyDenied(
                f"only the federation gateway ({self._only_caller.decode()}) may run tasks "
                f"of domain {self.domain.name}; call other domains through the gateway"
            )

    def _admit(self, request: orch.ExecuteRequest, context: ServicerContext) -> _Admitted:
        task = convert.task_from_proto(request.task)
        if task.target.domain != self.domain.name:
            raise CapabilityNotFound(
                f"this orchestrator serves domain {self.domain.name}, not {task.target.domain}"
            )
        capability = self.domain.get(task.target.name, task.target.version)
        if capability is None:
            raise CapabilityNotFound(f"domain {self.domain.name} has no capability {task.target}")
        payload = convert.payload_from_proto(request.input)
        if payload.json is None:
            raise InvalidRequest(f"capability {task.target} takes JSON input")
        try:
            model = capability.input_model.model_validate(dict(payload.json))
        except ValidationError as exc:
            raise InvalidRequest(
                f"input does not match capability {task.target}: {_describe(exc)}"
            ) from None
        timeout = _timeout(task, capability, context)
        task = replace(
            task,
            context=tuple(view_from_proto(c) for c in request.context),
            context_grant=request.context_grant,
            deadline=datetime.now(UTC) + timedelta(seconds=timeout),
            call_path=_call_path(context) or (f"{task.target.domain}/{task.target.name}",),
            detached=request.detached,
        )
        return _Admitted(task, capability, model, timeout)

    # --- running -----------------------------------------------------------

    async def _run(self, admitted: _Admitted, ctx: TaskContext, run: TaskRun) -> None:
        task = admitted.task
        if self._journal is not None:
            # One short append per task; small enough to do on the loop.
            with self._journal.open("a") as journal:
                journal.write(f"{task.task_id} {task.target} {task.idempotency_key or '-'}\n")
        try:
            final = await self._outcome(admitted, ctx)
        except asyncio.CancelledError:
            # This task is the top of its own asyncio task: ending the stream with a
            # CANCELED event is the whole point of catching it.
            reason = run.cancel_reason
            final = TaskUpdate(
                TaskState.CANCELED, f"canceled: {reason}" if reason else "canceled", final=True
            )
        run.add(final)

    async def _outcome(self, admitted: _Admitted, ctx: TaskContext) -> TaskUpdate:
        task, capability = admitted.task, admitted.capability
        deadline = asyncio.timeout(admitted.timeout)
        try:
            async with deadline:
                result = await capability.handler(ctx, admitted.request)
        except InputRequired as exc:
            return TaskUpdate(TaskState.INPUT_REQUIRED, exc.question, final=True)
        except TimeoutError as exc:
            if not deadline.expired():
                return _handler_failed(task, exc)
            message = f"{task.target} did not finish within {admitted.timeout:.3f}s"
            return _failed(TaskError(DEADLINE_EXCEEDED_CODE, message))
        except Exception as exc:
            return _handler_failed(task, exc)
        try:
            output = capability.output_model.model_validate(result).model_dump(mode="json")
        except ValidationError as exc:
            log.error("task %s (trace %s): invalid output: %s", task.task_id, task.trace_id, exc)
            return _failed(
                TaskError("invalid_output", f"{task.target} returned bad output: {_describe(exc)}")
            )
        return TaskUpdate(TaskState.COMPLETED, "completed", output=Payload(json=output), final=True)


def _handler_failed(task: TaskInfo, exc: Exception) -> TaskUpdate:
    log.error(
        "task %s (trace %s) of %s failed",
        task.task_id,
        task.trace_id,
        task.target,
        exc_info=exc,
    )
    retryable = exc.retryable if isinstance(exc, GatewayError) else False
    return _failed(TaskError("handler_error", str(exc) or type(exc).__name__, retryable))


def _failed(error: TaskError) -> TaskUpdate:
    return TaskUpdate(TaskState.FAILED, error.message, error=error, final=True)


def _describe(exc: ValidationError) -> str:
    # pydantic's str() spans lines and links to its docs; callers need field and reason.
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
    )


def _timeout(task: TaskInfo, capability: Capability, context: ServicerContext) -> float:
    """Seconds the handler may run: the tightest of the task's deadline and the RPC's,
    or the capability's default timeout when the call carries neither."""
    limits: list[float] = []
    if task.deadline is not None:
        limits.append((task.deadline - datetime.now(UTC)).total_seconds())
    remaining = context.time_remaining()
    if remaining is not None:
        limits.append(remaining)
    return max(0.0, min(limits)) if limits else capability.timeout


def _call_path(context: ServicerContext) -> tuple[str, ...]:
    for key, value in context.invocation_metadata() or ():
        if key == metadata.CALL_PATH and isinstance(value, str):
            return metadata.decode_call_path(value)
    return ()
