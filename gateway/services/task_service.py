"""The `TaskService` servicer: translates messages and maps errors, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import tasks_pb2 as tk
from federation.v1 import tasks_pb2_grpc as tk_grpc
from gateway.core.tasks.manager import TaskManager
from gateway.core.tasks.records import TaskQuery
from gateway.errors import InvalidRequest
from gateway.services import convert, metadata
from gateway.services.errors import abort_for
from gateway.services.gateway_service import invocation_of
from gateway.services.identity import caller_of
from gateway.services.task_convert import event_to_proto, record_to_proto

Context = grpc.aio.ServicerContext[object, object]

MAX_LIST = 500


class TaskService(tk_grpc.TaskServiceServicer):
    """Long-running tasks: submit, get, watch, cancel, list, respond.

    Who sees a task: the domain that submitted it, principals the policy lets
    `respond` to its capability, and auditors (`audit.read`) of its domain; to
    anyone else it does not exist (NOT_FOUND). Only the submitting domain cancels.
    """

    def __init__(self, manager: TaskManager) -> None:
        self._manager = manager

    async def SubmitTask(  # noqa: N802 - gRPC method names are PascalCase
        self, request: tk.SubmitTaskRequest, context: Context
    ) -> tk.TaskRecord:
        try:
            call = gw.InvokeRequest(
                context_refs=request.context_refs,
                idempotency_key=request.idempotency_key,
                trace_id=request.trace_id,
                parent_task_id=request.parent_task_id,
                agent=request.agent,
            )
            if request.HasField("target"):
                call.target.CopyFrom(request.target)
            if request.HasField("input"):
                call.input.CopyFrom(request.input)
            invocation = invocation_of(call, context)
            # The RPC only hands the task over; the task's own deadline is separate.
            invocation.timeout = (
                request.timeout.ToTimedelta().total_seconds()
                if request.HasField("timeout")
                else None
            )
            stored = await self._manager.submit(invocation)
        except Exception as exc:
            await abort_for(context, exc)
        context.set_trailing_metadata(
            ((metadata.TRACE_ID, stored.trace_id), (metadata.TASK_ID, stored.task_id))
        )
        return record_to_proto(stored)

    async def GetTask(  # noqa: N802
        self, request: tk.GetTaskRequest, context: Context
    ) -> tk.TaskRecord:
        try:
            stored = await self._manager.get(caller_of(context), request.task_id)
        except Exception as exc:
            await abort_for(context, exc)
        return record_to_proto(stored)

    async def WatchTask(  # noqa: N802
        self, request: tk.WatchTaskRequest, context: Context
    ) -> AsyncIterator[pb.TaskEvent]:
        try:
            events = self._manager.watch(
                caller_of(context), request.task_id, request.after_sequence
            )
            async for event in events:
                yield event_to_proto(event)
        except Exception as exc:
            await abort_for(context, exc)

    async def CancelTask(  # noqa: N802
        self, request: tk.CancelTaskRequest, context: Context
    ) -> tk.TaskRecord:
        try:
            stored = await self._manager.cancel(caller_of(context), request.task_id, request.reason)
        except Exception as exc:
            await abort_for(context, exc)
        return record_to_proto(stored)

    async def ListTasks(  # noqa: N802
        self, request: tk.ListTasksRequest, context: Context
    ) -> tk.ListTasksResponse:
        try:
            if request.limit < 0 or request.limit > MAX_LIST:
                raise InvalidRequest(f"limit must be between 0 and {MAX_LIST}")
            query = TaskQuery(
                states=tuple(convert.state_from_proto(s) for s in request.states),
                target_domain=request.domain,
                trace_id=request.trace_id,
                limit=request.limit or 50,
            )
            found = await self._manager.list_tasks(caller_of(context), query)
        except Exception as exc:
            await abort_for(context, exc)
        return tk.ListTasksResponse(tasks=[record_to_proto(t) for t in found])

    async def RespondTask(  # noqa: N802
        self, request: tk.RespondTaskRequest, context: Context
    ) -> tk.TaskRecord:
        try:
            if not request.HasField("input"):
                raise InvalidRequest("input is required: the answer, a JSON object")
            answer = convert.payload_from_proto(request.input)
            if answer.json is None:
                raise InvalidRequest("the answer must be a JSON object")
            stored = await self._manager.respond(caller_of(context), request.task_id, answer)
        except Exception as exc:
            await abort_for(context, exc)
        return record_to_proto(stored)
