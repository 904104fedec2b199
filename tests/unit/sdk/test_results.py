"""Gateway answers and task events read into SDK types."""

from __future__ import annotations

import pytest
from google.protobuf import duration_pb2

from domains.sdk import CallFailed, InvokeResult, TaskState
from domains.sdk.events import event_from_proto
from domains.sdk.results import (
    domain_info_from_proto,
    invoke_result_from_proto,
    lease_from_proto,
)
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from gateway.core.models import CapabilitySpec, TaskError
from gateway.errors import InvalidRequest
from gateway.services import convert


def test_completed_invoke_response() -> None:
    response = gw.InvokeResponse(
        task=pb.Task(
            task_id="t1",
            trace_id="tr",
            status=pb.TaskStatus(state=pb.TASK_STATE_COMPLETED, message="done"),
        ),
        output=convert.json_payload({"score": 0.5}),
    )

    result = invoke_result_from_proto(response)

    assert result == InvokeResult("t1", "tr", TaskState.COMPLETED, {"score": 0.5}, "done")
    assert result.ok
    assert result.output_or_raise() == {"score": 0.5}


def test_failed_invoke_response_raises_on_unwrap() -> None:
    response = gw.InvokeResponse(
        task=pb.Task(task_id="t1", status=pb.TaskStatus(state=pb.TASK_STATE_FAILED)),
        error=pb.TaskError(code="handler_error", message="boom", retryable=True),
    )

    result = invoke_result_from_proto(response)

    assert not result.ok
    assert result.error == TaskError("handler_error", "boom", True)
    with pytest.raises(CallFailed, match="task t1 ended failed: boom") as caught:
        result.output_or_raise()
    assert caught.value.state is TaskState.FAILED
    assert caught.value.retryable is True


def test_input_required_is_not_an_output() -> None:
    result = InvokeResult("t1", "tr", TaskState.INPUT_REQUIRED, message="approve?")

    with pytest.raises(CallFailed, match="input-required: approve"):
        result.output_or_raise()


def test_unspecified_state_is_rejected() -> None:
    with pytest.raises(InvalidRequest):
        invoke_result_from_proto(gw.InvokeResponse(task=pb.Task(task_id="t1")))


def test_event_from_proto_reads_json_bytes_and_struct() -> None:
    as_bytes = pb.TaskEvent(
        task_id="t",
        sequence=3,
        status=pb.TaskStatus(state=pb.TASK_STATE_COMPLETED),
        output=convert.json_payload({"a": 1}),
        final=True,
    )
    as_struct = pb.TaskEvent(task_id="t", sequence=3, status=as_bytes.status, final=True)
    as_struct.output.json.update({"a": 1})

    assert event_from_proto(as_bytes).output == {"a": 1}
    assert event_from_proto(as_struct).output == {"a": 1.0}
    assert event_from_proto(as_bytes).sequence == 3


def test_event_with_non_json_output_is_rejected() -> None:
    event = pb.TaskEvent(
        task_id="t",
        status=pb.TaskStatus(state=pb.TASK_STATE_COMPLETED),
        output=pb.Payload(data=b"\x00", content_type="application/octet-stream"),
    )

    with pytest.raises(InvalidRequest, match="not JSON"):
        event_from_proto(event)


def test_domain_info_and_lease() -> None:
    spec = CapabilitySpec(name="score", version="1.0.0", input_schema={"type": "object"})
    info = gw.DomainInfo(
        name="risk",
        owner="risk-team",
        endpoints=[gw.EndpointStatus(address="127.0.0.1:1", lease_id="l1", live=True)],
        capabilities=[convert.capability_to_proto(spec)],
    )

    domain = domain_info_from_proto(info)

    assert domain.name == "risk"
    assert domain.capabilities == (spec,)
    assert domain.endpoints[0].address == "127.0.0.1:1"
    assert domain.endpoints[0].live

    lease = lease_from_proto(
        gw.RegisterDomainResponse(
            lease_id="l1",
            lease_ttl=duration_pb2.Duration(seconds=30),
            heartbeat_interval=duration_pb2.Duration(seconds=10),
        )
    )
    assert (lease.lease_id, lease.ttl.total_seconds(), lease.heartbeat_interval.seconds) == (
        "l1",
        30.0,
        10,
    )
    with pytest.raises(InvalidRequest, match="lease_id"):
        lease_from_proto(gw.RegisterDomainResponse())
