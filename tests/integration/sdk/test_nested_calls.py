"""A handler's `ctx.call` goes through the gateway as a nested task of the running one."""

from __future__ import annotations

import json

import grpc

from domains.sdk import DomainServer, TaskState
from domains.sdk.testing import execute, serve_in_process
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from gateway.services import metadata
from tests.integration.sdk.conftest import RunningFake
from tests.integration.sdk.sample_domain import build_domain


async def test_nested_call_carries_trace_parent_call_path_and_caller(
    gateway: RunningFake,
) -> None:
    async with serve_in_process(build_domain("finance"), gateway=gateway.address) as server:
        events = await execute(
            server.address,
            "relay",
            {"target": "risk/score@1.0.0", "payload": {"customer": "acme", "amount": 5}},
            task_id="task-parent",
            trace_id="trace-42",
            call_path=("root/start", "finance/relay"),
        )

    final = events[-1]
    assert final.state is TaskState.COMPLETED
    assert final.output == {"answer": {"echo": {"customer": "acme", "amount": 5}}}
    (seen,) = gateway.fake.invocations
    request: gw.InvokeRequest = seen.request
    assert (request.target.domain, request.target.name, request.target.version) == (
        "risk",
        "score",
        "1.0.0",
    )
    assert request.trace_id == "trace-42"
    assert request.parent_task_id == "task-parent"
    assert request.idempotency_key == "k1"
    assert request.input.content_type == "application/json"  # JSON bytes, not a Struct
    assert json.loads(request.input.data) == {"customer": "acme", "amount": 5}
    assert seen.metadata[metadata.CALLER_DOMAIN] == "finance"
    assert seen.metadata[metadata.TRACE_ID] == "trace-42"
    assert seen.metadata[metadata.PARENT_TASK_ID] == "task-parent"
    assert seen.metadata[metadata.CALL_PATH] == "root/start,finance/relay"


async def test_nested_call_without_received_call_path_starts_it_at_this_task(
    gateway: RunningFake,
) -> None:
    async with serve_in_process(build_domain("finance"), gateway=gateway.address) as server:
        await execute(server.address, "relay", {"payload": {"customer": "a", "amount": 1}})

    assert gateway.fake.invocations[0].metadata[metadata.CALL_PATH] == "finance/relay"


async def test_nested_call_deadline_never_outlives_the_task(gateway: RunningFake) -> None:
    async with serve_in_process(build_domain("finance"), gateway=gateway.address) as server:
        await execute(server.address, "relay", {"payload": {}}, timeout=1)
        await execute(server.address, "relay", {"payload": {}}, timeout=None)

    capped, by_capability = (seen.time_remaining for seen in gateway.fake.invocations)
    assert capped is not None
    # gRPC rounds the deadline it sends up to its timeout units, hence the slack.
    assert 0 < capped < 1.5  # the caller's 1s deadline
    assert by_capability is not None
    assert 20 < by_capability < 30.5  # relay's 30s default timeout


async def test_refused_nested_call_fails_the_task_with_the_reason(gateway: RunningFake) -> None:
    gateway.fake.invoke_status = grpc.StatusCode.PERMISSION_DENIED
    async with serve_in_process(build_domain("finance"), gateway=gateway.address) as server:
        final = (await execute(server.address, "relay", {"payload": {}}))[-1]

    assert final.state is TaskState.FAILED
    assert final.error is not None
    assert final.error.message == "refused by the fake"


async def test_failed_nested_task_raises_call_failed(gateway: RunningFake) -> None:
    def failed(request: gw.InvokeRequest) -> gw.InvokeResponse:
        return gw.InvokeResponse(
            task=pb.Task(task_id="remote-1", status=pb.TaskStatus(state=pb.TASK_STATE_FAILED)),
            error=pb.TaskError(code="handler_error", message="risk model down", retryable=True),
        )

    gateway.fake.invoke = failed
    async with serve_in_process(build_domain("finance"), gateway=gateway.address) as server:
        final = (await execute(server.address, "relay", {"payload": {}}))[-1]

    assert final.error is not None
    assert final.error.message == "task remote-1 ended failed: risk model down"
    assert final.error.retryable


async def test_nested_calls_share_the_servers_gateway_channel(gateway: RunningFake) -> None:
    async with serve_in_process(build_domain("finance"), gateway=gateway.address) as server:
        await eventually_registered(server)
        client = server.gateway
        assert client is not None
        stub = client.stub
        for _ in range(3):
            await execute(server.address, "relay", {"payload": {}})
        assert client.stub is stub  # one channel per gateway, never one per call

    assert len(gateway.fake.invocations) == 3


async def eventually_registered(server: DomainServer) -> None:
    assert server.lease_keeper is not None
    await server.lease_keeper.wait_registered()
