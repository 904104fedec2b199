"""What the load generator calls: Execute on an orchestrator (direct or via the proxy)
and Invoke on the gateway, each over one long-lived grpc.aio channel.

Every call sends the same JSON payload (bytes, `application/json`) and is checked:
the task must end COMPLETED, or the benchmark stops with `CallFailed`.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any, Protocol

import grpc

from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from federation.v1 import orchestrator_pb2 as orch
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.core.models import CapabilityTarget, Principal, TaskState
from gateway.core.task import TaskInfo
from gateway.services import convert, metadata

CALLER = "bench"
TARGET = CapabilityTarget("echo", "echo", "1.0.0")
CALL_TIMEOUT = 30.0
"""gRPC deadline of every call, in seconds (the gateway propagates the same kind)."""

PAYLOAD: dict[str, Any] = {
    "text": "refund request for order o-5001: arrived broken, customer asks for a refund",
    "numbers": [4, 8, 15, 16, 23, 42, 1001, 5001],
    "attributes": {"customer_id": "c-1001", "order_id": "o-5001", "channel": "web"},
}
"""The input of every call (about 200 bytes of JSON)."""


class CallFailed(RuntimeError):
    """A benchmark call did not complete as expected."""


class Target(Protocol):
    """One way of reaching the echo capability."""

    async def call(self) -> None:
        """Makes one call and checks it completed."""

    async def output(self) -> dict[str, Any]:
        """Makes one call and returns its output, to check the echo end to end."""


class ExecuteTarget:
    """`DomainOrchestrator.Execute`, sent the way the gateway sends it."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._execute = orch_grpc.DomainOrchestratorStub(channel).Execute
        template = TaskInfo(
            task_id="template",
            trace_id="template",
            caller=Principal(CALLER),
            target=TARGET,
            call_path=(f"{TARGET.domain}/{TARGET.name}",),
        )
        self._template = orch.ExecuteRequest(
            task=convert.task_to_proto(template, TaskState.SUBMITTED),
            input=convert.json_payload(PAYLOAD),
        )
        self._call_path = metadata.encode_call_path(template.call_path)
        self._prefix = uuid.uuid4().hex[:16]
        self._ids = itertools.count()

    async def _final(self) -> pb.TaskEvent:
        task_id = f"{self._prefix}{next(self._ids):016x}"  # unique: the domain refuses repeats
        request = orch.ExecuteRequest()
        request.CopyFrom(self._template)
        request.task.task_id = task_id
        request.task.trace_id = task_id
        md = (
            (metadata.TRACE_ID, task_id),
            (metadata.TASK_ID, task_id),
            (metadata.PARENT_TASK_ID, ""),
            (metadata.CALL_PATH, self._call_path),
        )
        last: pb.TaskEvent | None = None
        async for event in self._execute(request, timeout=CALL_TIMEOUT, metadata=md):
            last = event
        if last is None or not last.final or last.status.state != pb.TASK_STATE_COMPLETED:
            raise CallFailed(f"Execute did not complete: {last}")
        return last

    async def call(self) -> None:
        await self._final()

    async def output(self) -> dict[str, Any]:
        return _json_of((await self._final()).output)


class InvokeTarget:
    """`FederationGateway.Invoke` as the calling domain `bench`."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._invoke = gw_grpc.FederationGatewayStub(channel).Invoke
        self._request = gw.InvokeRequest(
            target=convert.target_to_proto(TARGET), input=convert.json_payload(PAYLOAD)
        )
        self._metadata = ((metadata.CALLER_DOMAIN, CALLER),)

    async def _response(self) -> gw.InvokeResponse:
        response: gw.InvokeResponse = await self._invoke(
            self._request, timeout=CALL_TIMEOUT, metadata=self._metadata
        )
        if response.task.status.state != pb.TASK_STATE_COMPLETED:
            raise CallFailed(f"Invoke did not complete: {response}")
        return response

    async def call(self) -> None:
        await self._response()

    async def output(self) -> dict[str, Any]:
        return _json_of((await self._response()).output)


def _json_of(payload: pb.Payload) -> dict[str, Any]:
    if payload.WhichOneof("body") == "data":
        value: dict[str, Any] = json.loads(payload.data)
        return value
    return dict(convert.payload_from_proto(payload, field="output").json or {})
