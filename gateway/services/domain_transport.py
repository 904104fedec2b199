"""Runs tasks on domain endpoints over gRPC (`DomainOrchestrator.Execute` / `Cancel`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import grpc

from federation.v1 import orchestrator_pb2 as orch
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.core.models import Payload, TaskState, TaskUpdate
from gateway.core.task import TaskInfo
from gateway.errors import (
    DeadlineExceeded,
    DomainUnavailable,
    GatewayError,
    InvalidRequest,
)
from gateway.services import convert, metadata
from gateway.services.channels import ChannelPool


class GrpcDomainTransport:
    """`DomainTransport` over long-lived gRPC channels from a `ChannelPool`."""

    def __init__(self, pool: ChannelPool) -> None:
        self._pool = pool
        # A stub is cheap to keep and costs a few µs to build: one per address.
        self._stubs: dict[str, orch_grpc.DomainOrchestratorAsyncStub] = {}

    def _stub(self, address: str) -> orch_grpc.DomainOrchestratorAsyncStub:
        stub = self._stubs.get(address)
        if stub is None:
            stub = self._stubs[address] = orch_grpc.DomainOrchestratorStub(self._pool.get(address))
        return stub

    async def discard(self, address: str) -> None:
        """Forgets an endpoint that left routing and closes its channel."""
        self._stubs.pop(address, None)
        await self._pool.discard(address)

    async def execute(
        self, address: str, task: TaskInfo, input: Payload, time_limit: float | None
    ) -> AsyncGenerator[TaskUpdate, None]:
        """Streams a task's updates from the endpoint at `address`."""
        stub = self._stub(address)
        request = orch.ExecuteRequest(
            task=convert.task_to_proto(task, TaskState.SUBMITTED),
            input=convert.payload_to_proto(input),
        )
        call = stub.Execute(request, timeout=time_limit, metadata=_task_metadata(task))
        try:
            async for event in call:
                # The gateway only passes the output on: no need to parse it.
                yield convert.update_from_proto(event, parse_output=False)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, task, address) from None
        except InvalidRequest as exc:
            # The domain sent something we cannot read: its fault, not the caller's.
            raise DomainUnavailable(
                f"domain {task.target.domain!r} sent a malformed event: {exc.message}"
            ) from None
        finally:
            # Leaving early (caller canceled, error) must stop the domain's work too.
            if not call.done():
                call.cancel()

    async def cancel(self, address: str, task_id: str, reason: str) -> bool:
        """Asks the endpoint to cancel `task_id`."""
        stub = self._stub(address)
        try:
            response = await stub.Cancel(
                orch.CancelRequest(task_id=task_id, reason=reason), timeout=5.0
            )
        except grpc.aio.AioRpcError:
            return False
        return response.found

    async def close(self) -> None:
        """Closes every channel."""
        self._stubs.clear()
        await self._pool.close()


def _task_metadata(task: TaskInfo) -> tuple[tuple[str, str], ...]:
    return (
        (metadata.TRACE_ID, task.trace_id),
        (metadata.TASK_ID, task.task_id),
        (metadata.PARENT_TASK_ID, task.parent_task_id),
        (metadata.CALL_PATH, metadata.encode_call_path(task.call_path)),
    )


def _translate(exc: grpc.aio.AioRpcError, task: TaskInfo, address: str) -> GatewayError:
    code = exc.code()
    target = f"{task.target} at {address}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"deadline exceeded while {target} was running task {task.task_id}")
    # CANCELLED here comes from the domain's side (a caller's cancellation reaches us
    # as asyncio cancellation instead): the endpoint stopped mid-call.
    if code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    ):
        return DomainUnavailable(f"{target} failed or went away: {exc.details()}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidRequest(f"{target} refused the input: {exc.details()}")
    return DomainUnavailable(f"{target} answered {code.name}: {exc.details()}")
