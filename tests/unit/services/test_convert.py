from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2

from federation.v1 import common_pb2 as pb
from gateway.core.models import CapabilitySpec, Classification, Payload, TaskState
from gateway.errors import InvalidRequest
from gateway.services import convert


def test_struct_payload_becomes_json() -> None:
    message = pb.Payload()
    message.json.update({"a": 1, "b": ["x"]})
    assert convert.payload_from_proto(message).json == {"a": 1.0, "b": ["x"]}


def test_json_bytes_are_parsed_and_kept_for_forwarding() -> None:
    payload = convert.payload_from_proto(convert.json_payload({"a": 1}))
    assert payload.json == {"a": 1}
    assert convert.payload_to_proto(payload).data == b'{"a":1}'


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (pb.Payload(), "input is required"),
        (pb.Payload(data=b"{", content_type="application/json"), "not valid JSON"),
        (pb.Payload(data=b"[1]", content_type="application/json"), "must be a JSON object"),
        (pb.Payload(data=b"\xff", content_type="application/json"), "not valid JSON"),
        (pb.Payload(data=b"abc"), "content_type is required"),
    ],
)
def test_bad_payloads_are_rejected(message: pb.Payload, error: str) -> None:
    with pytest.raises(InvalidRequest, match=error):
        convert.payload_from_proto(message)


def test_opaque_bytes_pass_through() -> None:
    payload = convert.payload_from_proto(pb.Payload(data=b"\x00\x01", content_type="x/bin"))
    assert payload == Payload(data=b"\x00\x01", content_type="x/bin")


def test_capability_round_trip() -> None:
    spec = CapabilitySpec(
        name="score",
        version="1.0.0",
        description="d",
        input_schema={"type": "object"},
        output_schema={"type": "object"},
        idempotent=True,
        default_timeout=timedelta(seconds=5),
        accepts=(Classification.INTERNAL,),
        returns=(Classification.CONFIDENTIAL, Classification.PUBLIC),
    )
    assert convert.capability_from_proto(convert.capability_to_proto(spec)) == spec


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (pb.Capability(name="Bad", version="1"), "invalid capability name"),
        (pb.Capability(name="ok", version=""), "version is required"),
        (pb.Capability(name="ok", version="1", input_schema_json="{"), "not valid JSON"),
        (pb.Capability(name="ok", version="1", input_schema_json="[]"), "JSON object"),
        (pb.Capability(name="ok", version="1", accepts=[0]), "unspecified"),
    ],
)
def test_bad_capabilities_are_rejected(message: pb.Capability, error: str) -> None:
    with pytest.raises(InvalidRequest, match=error):
        convert.capability_from_proto(message)


def test_unspecified_task_state_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="unspecified"):
        convert.state_from_proto(pb.TASK_STATE_UNSPECIFIED)
    for state in TaskState:
        assert convert.state_from_proto(convert.state_to_proto(state)) is state


def test_event_without_status_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="without status"):
        convert.update_from_proto(pb.TaskEvent(task_id="t"))


def test_capability_schema_is_serialised_canonically() -> None:
    spec = CapabilitySpec(name="ab", version="1", input_schema={"b": 1, "a": 2})
    assert json.loads(convert.capability_to_proto(spec).input_schema_json) == {"a": 2, "b": 1}


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 24, 23, 40, 44, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 5, tzinfo=UTC),
        datetime(2020, 5, 5, 1, 2, 3, 999999, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0),  # naive: local time
    ],
)
def test_timestamps_match_protobuf_from_datetime(value: datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(value.astimezone(UTC))
    assert convert.timestamp_to_proto(value) == expected
