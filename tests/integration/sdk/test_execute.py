"""DomainOrchestrator.Execute / Describe / Cancel over a real loopback channel."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from domains.sdk import DomainServer, TaskState
from domains.sdk.testing import cancel, eventually, execute, execute_stream
from federation.v1 import common_pb2 as pb
from federation.v1 import orchestrator_pb2 as orch
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.core.models import CapabilityTarget, Principal
from gateway.core.models import TaskState as CoreState
from gateway.core.task import TaskInfo
from gateway.errors import DeadlineExceeded, InvalidRequest, NotFound
from gateway.services import convert
from tests.integration.sdk.sample_domain import Probe, ScoreRequest


def _task(domain: str, name: str) -> pb.Task:
    info = TaskInfo(
        task_id="t-1",
        trace_id="trace-1",
        caller=Principal("finance"),
        target=CapabilityTarget(domain, name),
    )
    return convert.task_to_proto(info, CoreState.SUBMITTED)


async def test_completed_task_streams_progress_then_output(risk: DomainServer) -> None:
    events = await execute(risk.address, "score", {"customer": "acme", "amount": 250})

    assert [e.sequence for e in events] == [1, 2, 3, 4]
    assert [e.state for e in events] == [TaskState.WORKING] * 3 + [TaskState.COMPLETED]
    assert [e.message for e in events[:3]] == ["started", "scoring acme", "rules checked"]
    assert [e.final for e in events] == [False, False, False, True]
    assert events[-1].output == {"customer": "acme", "score": 0.25}
    assert len({e.task_id for e in events}) == 1


async def test_output_travels_as_json_bytes(risk: DomainServer) -> None:
    async with grpc.aio.insecure_channel(risk.address) as channel:
        stub = orch_grpc.DomainOrchestratorStub(channel)
        request = orch.ExecuteRequest(
            task=_task("risk", "score"), input=convert.json_payload({"customer": "a", "amount": 1})
        )
        events = [e async for e in stub.Execute(request, timeout=10)]

    final = events[-1]
    assert final.output.content_type == "application/json"
    assert json.loads(final.output.data) == {"customer": "a", "score": 0.001}


async def test_struct_input_and_pydantic_input_are_accepted(risk: DomainServer) -> None:
    events = await execute(risk.address, "risk/score@1.0.0", ScoreRequest(customer="b", amount=2))
    assert events[-1].output == {"customer": "b", "score": 0.002}

    async with grpc.aio.insecure_channel(risk.address) as channel:
        stub = orch_grpc.DomainOrchestratorStub(channel)
        payload = pb.Payload()
        payload.json.update({"customer": "c", "amount": 3})
        request = orch.ExecuteRequest(task=_task("risk", "score"), input=payload)
        final = [e async for e in stub.Execute(request, timeout=10)][-1]
    assert final.status.state == pb.TASK_STATE_COMPLETED


async def test_handler_exception_fails_the_task_and_the_server_keeps_serving(
    risk: DomainServer, caplog: pytest.LogCaptureFixture
) -> None:
    events = await execute(risk.address, "explode", {})

    final = events[-1]
    assert final.final
    assert final.state is TaskState.FAILED
    assert final.error is not None
    assert (final.error.code, final.error.message) == ("handler_error", "the model is on fire")
    assert "the model is on fire" in caplog.text  # traceback logged locally
    assert (await execute(risk.address, "score", {"customer": "a", "amount": 1}))[-1].output


async def test_input_required_ends_with_the_question(risk: DomainServer) -> None:
    events = await execute(risk.address, "approve", {"customer": "acme", "amount": 9000})

    assert [e.message for e in events] == [
        "started",
        "over the limit",
        "approve 9000.0 for acme?",
    ]
    assert events[-1].state is TaskState.INPUT_REQUIRED
    assert events[-1].final


async def test_invalid_output_fails_the_task(risk: DomainServer) -> None:
    final = (await execute(risk.address, "bad-output", {}))[-1]

    assert final.state is TaskState.FAILED
    assert final.error is not None
    assert final.error.code == "invalid_output"
    assert "score: Field required" in final.error.message


@pytest.mark.parametrize(
    ("target", "body", "error", "text"),
    [
        ("unknown", {}, NotFound, "has no capability risk/unknown"),
        ("risk/score@9.9.9", {"customer": "a", "amount": 1}, NotFound, "risk/score@9.9.9"),
        ("finance/score", {"customer": "a", "amount": 1}, NotFound, "not finance"),
        ("score", {"customer": "a", "amount": -1}, InvalidRequest, "amount: Input should be"),
        ("score", {"amount": 1}, InvalidRequest, "customer: Field required"),
    ],
)
async def test_refusals_before_running(
    risk: DomainServer, target: str, body: dict[str, object], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        await execute(risk.address, target, body)


@pytest.mark.parametrize(
    ("task", "payload", "text"),
    [
        (pb.Task(), convert.json_payload({}), "task_id is required"),
        (pb.Task(task_id="t"), convert.json_payload({}), "invalid domain name ''"),
        (_task("risk", "score"), None, "input is required"),
    ],
    ids=["no-task-id", "no-caller", "no-input"],
)
async def test_malformed_requests_get_invalid_argument(
    risk: DomainServer, task: pb.Task, payload: pb.Payload | None, text: str
) -> None:
    async with grpc.aio.insecure_channel(risk.address) as channel:
        stub = orch_grpc.DomainOrchestratorStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [
                e
                async for e in stub.Execute(
                    orch.ExecuteRequest(task=task, input=payload), timeout=10
                )
            ]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert text in (caught.value.details() or "")


async def test_status_codes_on_the_wire(risk: DomainServer) -> None:
    async with grpc.aio.insecure_channel(risk.address) as channel:
        stub = orch_grpc.DomainOrchestratorStub(channel)
        for name, body, code in [
            ("nope", {}, grpc.StatusCode.NOT_FOUND),
            ("score", {"customer": 1}, grpc.StatusCode.INVALID_ARGUMENT),
        ]:
            request = orch.ExecuteRequest(
                task=_task("risk", name), input=convert.json_payload(body)
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                _ = [e async for e in stub.Execute(request, timeout=10)]
            assert caught.value.code() == code
        bytes_input = orch.ExecuteRequest(
            task=_task("risk", "score"), input=pb.Payload(data=b"x", content_type="text/plain")
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [e async for e in stub.Execute(bytes_input, timeout=10)]
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "takes JSON input" in (caught.value.details() or "")


async def test_cancel_rpc_cancels_a_running_handler(risk: DomainServer, probe: Probe) -> None:
    stream = execute_stream(risk.address, "wait", {}, task_id="task-c")
    first = await anext(stream)
    assert first.state is TaskState.WORKING
    async with asyncio.timeout(5):
        await probe.started.wait()

    assert await cancel(risk.address, "task-c", reason="operator said so")

    rest = [e async for e in stream]
    assert rest[-1].state is TaskState.CANCELED
    assert rest[-1].message == "canceled: operator said so"
    assert rest[-1].final
    assert probe.canceled.is_set()
    assert risk.service.running == ()
    assert not await cancel(risk.address, "task-c")  # no longer running


async def test_cancel_of_an_unknown_task_is_not_found(risk: DomainServer) -> None:
    assert await cancel(risk.address, "never-started") is False


async def test_client_cancelling_the_stream_cancels_the_handler(
    risk: DomainServer, probe: Probe
) -> None:
    stream = execute_stream(risk.address, "wait", {})
    await anext(stream)
    async with asyncio.timeout(5):
        await probe.started.wait()

    await stream.aclose()

    async with asyncio.timeout(5):
        await probe.canceled.wait()
    await eventually(lambda: risk.service.running == ())


async def test_grpc_deadline_is_respected(risk: DomainServer, probe: Probe) -> None:
    # The handler's time limit is the RPC's remaining time, so the domain's own
    # deadline_exceeded event and the client's DEADLINE_EXCEEDED race; either is right.
    try:
        final = (await execute(risk.address, "wait", {}, timeout=0.3))[-1]
    except DeadlineExceeded:
        pass
    else:
        assert final.error is not None
        assert final.error.code == "deadline_exceeded"

    async with asyncio.timeout(5):
        await probe.canceled.wait()
    remaining = probe.remaining[0]
    assert remaining is not None
    assert 0 < remaining < 1  # the RPC's 0.3s deadline, not the 60s capability timeout


async def test_task_deadline_fails_the_task(risk: DomainServer, probe: Probe) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=0.2)

    final = (await execute(risk.address, "wait", {}, deadline=deadline))[-1]

    assert final.state is TaskState.FAILED
    assert final.error is not None
    assert final.error.code == "deadline_exceeded"
    assert probe.canceled.is_set()


async def test_capability_timeout_applies_without_any_deadline(
    risk: DomainServer, probe: Probe
) -> None:
    final = (await execute(risk.address, "slow", {}, timeout=None))[-1]

    assert final.state is TaskState.FAILED
    assert final.error is not None
    assert final.error.code == "deadline_exceeded"
    assert "within 0.200s" in final.error.message
    assert probe.canceled.is_set()


async def test_duplicate_running_task_id_is_refused(risk: DomainServer, probe: Probe) -> None:
    stream = execute_stream(risk.address, "wait", {}, task_id="dup")
    await anext(stream)

    with pytest.raises(Exception, match="already running") as caught:
        await execute(risk.address, "wait", {}, task_id="dup")
    assert type(caught.value).__name__ == "InternalError"  # ALREADY_EXISTS has no row

    probe.release.set()
    assert [e async for e in stream][-1].state is TaskState.COMPLETED


async def test_describe_returns_the_catalog(risk: DomainServer) -> None:
    async with grpc.aio.insecure_channel(risk.address) as channel:
        response = await orch_grpc.DomainOrchestratorStub(channel).Describe(
            orch.DescribeRequest(), timeout=10
        )

    assert (response.domain, response.owner) == ("risk", "risk-team")
    names = [c.name for c in response.capabilities]
    assert names == ["score", "explode", "approve", "wait", "slow", "bad-output", "relay"]
    score = convert.capability_from_proto(response.capabilities[0])
    assert score.input_schema == ScoreRequest.model_json_schema()
    assert score.idempotent
