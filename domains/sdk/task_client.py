"""Client of the gateway's `TaskService`: long-running tasks that survive a gateway restart.

Example:
    ```python
    async with GatewayClient("127.0.0.1:7443", domain="cli") as gateway:
        tasks = TaskClient(gateway)
        record = await tasks.submit("support/open-refund-case", {...})
        async for event in tasks.watch(record.task_id):
            print(event.sequence, event.state, event.message)
    ```
"""

# ruff: noqa: ASYNC109 - `timeout` is the gRPC deadline (or the task's own deadline).

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domains.sdk.events import TaskEvent, event_from_proto
from domains.sdk.gateway_client import GatewayClient, JSONInput, json_object, translate_rpc_errors
from domains.sdk.results import json_output
from federation.v1 import tasks_pb2 as tk
from federation.v1 import tasks_pb2_grpc as tk_grpc
from gateway.core.models import CapabilityTarget, TaskError, TaskState
from gateway.core.names import check_agent, parse_capability_ref
from gateway.services import convert


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A long-running task as the gateway stores it.

    Attributes:
        task_id: Id the gateway gave the task.
        trace_id: Trace the task runs in.
        caller: Domain (and agent) that submitted it.
        target: `domain/capability@version` that runs it.
        state: Current state.
        message: Latest status message (the question when input is required).
        output: JSON output once completed.
        error: Error detail once failed.
        last_sequence: Position of the latest event (`watch` resumes after one).
        created_at: When the gateway accepted it.
        updated_at: When its state last changed.
        owner: Gateway instance following it ("" once it ended).
        endpoint: Endpoint of the target domain that runs it.
    """

    task_id: str
    trace_id: str
    caller: str
    target: str
    state: TaskState
    message: str
    output: dict[str, Any] | None
    error: TaskError | None
    last_sequence: int
    created_at: datetime
    updated_at: datetime
    owner: str
    endpoint: str

    @property
    def done(self) -> bool:
        """True once the task ended."""
        return self.state.terminal


def record_from_proto(message: tk.TaskRecord) -> TaskRecord:
    """A wire TaskRecord as a `TaskRecord`."""
    task = message.task
    caller = task.caller.domain + (f"/{task.caller.agent}" if task.caller.agent else "")
    return TaskRecord(
        task_id=task.task_id,
        trace_id=task.trace_id,
        caller=caller,
        target=str(convert.target_from_proto(task.target)),
        state=convert.state_from_proto(task.status.state),
        message=task.status.message,
        output=json_output(message.output, task.task_id) if message.HasField("output") else None,
        error=TaskError(message.error.code, message.error.message, message.error.retryable)
        if message.HasField("error")
        else None,
        last_sequence=message.last_sequence,
        created_at=convert.timestamp_from_proto(message.created_at),
        updated_at=convert.timestamp_from_proto(task.status.timestamp),
        owner=message.owner,
        endpoint=message.endpoint,
    )


class TaskClient:
    """Long-running tasks over a `GatewayClient`'s channel and identity.

    Raises (from every method): the `gateway.errors` tree, mapped from gRPC statuses,
    for example `PolicyDenied`, `TaskNotFound`/`NotFound`, `FailedPrecondition`.
    """

    def __init__(self, gateway: GatewayClient) -> None:
        """Creates a client that shares `gateway`'s channel."""
        self._gateway = gateway
        self._stub: tk_grpc.TaskServiceAsyncStub | None = None

    @property
    def stub(self) -> tk_grpc.TaskServiceAsyncStub:
        """The generated stub over the gateway client's channel."""
        if self._stub is None:
            self._stub = tk_grpc.TaskServiceStub(self._gateway.channel)
        return self._stub

    async def submit(
        self,
        target: str,
        input: JSONInput,
        *,
        timeout: float | None = None,
        idempotency_key: str = "",
        trace_id: str = "",
        agent: str | None = None,
        rpc_timeout: float | None = 30.0,
    ) -> TaskRecord:
        """Submits a task; returns once the gateway stored it, before it runs.

        Args:
            target: `domain/capability[@version]`.
            input: JSON object or pydantic model.
            timeout: Seconds the task may take (waiting for input included); None
                for the gateway's default.
            idempotency_key: The same key returns the task first submitted with it.
            trace_id: Trace to join; empty starts a new one.
            agent: Agent acting for this call; None uses the gateway client's default.
            rpc_timeout: Deadline of the submission itself.
        """
        domain, name, version = parse_capability_ref(target)
        request = tk.SubmitTaskRequest(
            target=convert.target_to_proto(CapabilityTarget(domain, name, version)),
            input=convert.json_payload(json_object(input)),
            idempotency_key=idempotency_key,
            trace_id=trace_id,
            agent=self._gateway.agent if agent is None else check_agent(agent),
        )
        if timeout is not None:
            request.timeout.CopyFrom(convert.duration_to_proto(timedelta(seconds=timeout)))
        with translate_rpc_errors():
            response = await self.stub.SubmitTask(request, timeout=rpc_timeout)
        return record_from_proto(response)

    async def get(self, task_id: str, *, timeout: float | None = 10.0) -> TaskRecord:
        """The task as it stands."""
        with translate_rpc_errors():
            response = await self.stub.GetTask(tk.GetTaskRequest(task_id=task_id), timeout=timeout)
        return record_from_proto(response)

    async def watch(self, task_id: str, *, after: int = 0) -> AsyncGenerator[TaskEvent, None]:
        """Yields the task's events after position `after`, then new ones, until the final.

        Resume a broken watch with `after` set to the last sequence number seen.
        """
        call = self.stub.WatchTask(tk.WatchTaskRequest(task_id=task_id, after_sequence=after))
        try:
            with translate_rpc_errors():
                async for message in call:
                    yield event_from_proto(message)
        finally:
            call.cancel()

    async def cancel(
        self, task_id: str, reason: str = "", *, timeout: float | None = 30.0
    ) -> TaskRecord:
        """Asks the task to stop; returns it once canceled (or as it stands after a while)."""
        with translate_rpc_errors():
            response = await self.stub.CancelTask(
                tk.CancelTaskRequest(task_id=task_id, reason=reason), timeout=timeout
            )
        return record_from_proto(response)

    async def list(
        self,
        *,
        states: Sequence[TaskState] = (),
        domain: str = "",
        trace_id: str = "",
        limit: int = 50,
        timeout: float | None = 10.0,
    ) -> list[TaskRecord]:
        """Tasks this identity may see, newest first, filtered."""
        request = tk.ListTasksRequest(
            states=[convert.state_to_proto(s) for s in states],
            domain=domain,
            trace_id=trace_id,
            limit=limit,
        )
        with translate_rpc_errors():
            response = await self.stub.ListTasks(request, timeout=timeout)
        return [record_from_proto(t) for t in response.tasks]

    async def respond(
        self, task_id: str, input: JSONInput, *, timeout: float | None = 30.0
    ) -> TaskRecord:
        """Answers a task waiting for input (needs `respond` in the shared policy)."""
        with translate_rpc_errors():
            response = await self.stub.RespondTask(
                tk.RespondTaskRequest(
                    task_id=task_id, input=convert.json_payload(json_object(input))
                ),
                timeout=timeout,
            )
        return record_from_proto(response)
