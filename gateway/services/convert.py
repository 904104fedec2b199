"""The one conversion module between `federation.v1` messages and core models.

Conversion from the wire is strict: missing required fields and `*_UNSPECIFIED`
enum values raise `InvalidRequest` with a clear message instead of defaulting.
Used by the gateway's servicers and by the domains SDK.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from gateway.core.models import (
    CapabilitySpec,
    CapabilityTarget,
    Classification,
    ContextRef,
    DomainRecord,
    EndpointRecord,
    Payload,
    Principal,
    TaskError,
    TaskState,
    TaskUpdate,
)
from gateway.core.names import check_agent, check_name
from gateway.core.task import TaskInfo
from gateway.errors import InvalidRequest

JSON_CONTENT_TYPE = "application/json"

_STATE_TO_PB = {
    TaskState.SUBMITTED: pb.TASK_STATE_SUBMITTED,
    TaskState.WORKING: pb.TASK_STATE_WORKING,
    TaskState.INPUT_REQUIRED: pb.TASK_STATE_INPUT_REQUIRED,
    TaskState.COMPLETED: pb.TASK_STATE_COMPLETED,
    TaskState.FAILED: pb.TASK_STATE_FAILED,
    TaskState.CANCELED: pb.TASK_STATE_CANCELED,
    TaskState.REJECTED: pb.TASK_STATE_REJECTED,
}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}

_CLASS_TO_PB = {
    Classification.PUBLIC: pb.CLASSIFICATION_PUBLIC,
    Classification.INTERNAL: pb.CLASSIFICATION_INTERNAL,
    Classification.CONFIDENTIAL: pb.CLASSIFICATION_CONFIDENTIAL,
    Classification.RESTRICTED: pb.CLASSIFICATION_RESTRICTED,
}
_CLASS_FROM_PB = {v: k for k, v in _CLASS_TO_PB.items()}


# --- time -------------------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_to_proto(value: datetime) -> timestamp_pb2.Timestamp:
    """A timezone-aware datetime as a protobuf Timestamp."""
    if value.tzinfo is None:
        # Naive: taken as local time, as `astimezone` does.
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(value.astimezone(UTC))
        return ts
    # The same fields `FromDatetime` sets, without its time tuple round trip
    # (a few µs, twice per Invoke).
    since = value - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000
    )


def now_timestamp() -> timestamp_pb2.Timestamp:
    """The current time as a protobuf Timestamp (cheaper than going through datetime)."""
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(time.time_ns())
    return ts


def timestamp_from_proto(value: timestamp_pb2.Timestamp) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime."""
    return value.ToDatetime(tzinfo=UTC)


def duration_to_proto(value: timedelta) -> duration_pb2.Duration:
    """A timedelta as a protobuf Duration."""
    d = duration_pb2.Duration()
    d.FromTimedelta(value)
    return d


# --- enums ------------------------------------------------------------------


def state_to_proto(state: TaskState) -> pb.TaskState.ValueType:
    """Core task state to wire enum."""
    return _STATE_TO_PB[state]


def state_from_proto(value: pb.TaskState.ValueType) -> TaskState:
    """Wire task state to core; UNSPECIFIED or unknown values are rejected."""
    try:
        return _STATE_FROM_PB[value]
    except KeyError:
        raise InvalidRequest(f"task state {value} is unspecified or unknown") from None


def classification_to_proto(value: Classification) -> pb.Classification.ValueType:
    """Core classification to wire enum."""
    return _CLASS_TO_PB[value]


def classification_from_proto(value: pb.Classification.ValueType) -> Classification:
    """Wire classification to core; UNSPECIFIED or unknown values are rejected."""
    try:
        return _CLASS_FROM_PB[value]
    except KeyError:
        raise InvalidRequest(f"classification {value} is unspecified or unknown") from None


# --- payloads ---------------------------------------------------------------


def payload_from_proto(
    message: pb.Payload, *, field: str = "input", parse_json: bool = True
) -> Payload:
    """Wire payload to core.

    JSON bytes are parsed so they can be validated; with `parse_json=False`
    (payloads only passed on, like a domain's output) they are kept as bytes.
    """
    kind = message.WhichOneof("body")
    if kind == "json":
        return Payload(json=json_format.MessageToDict(message.json))
    if kind == "data":
        if message.content_type == JSON_CONTENT_TYPE and parse_json:
            try:
                value = json.loads(message.data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidRequest(f"{field} is not valid JSON: {exc}") from None
            if not isinstance(value, dict):
                raise InvalidRequest(f"{field} must be a JSON object")
            return Payload(json=value, data=message.data, content_type=JSON_CONTENT_TYPE)
        if not message.content_type:
            raise InvalidRequest(f"{field}.content_type is required for bytes payloads")
        return Payload(data=message.data, content_type=message.content_type)
    raise InvalidRequest(f"{field} is required: set json or data")


def payload_to_proto(value: Payload) -> pb.Payload:
    """Core payload to wire. Original bytes are forwarded untouched when present."""
    return fill_payload(pb.Payload(), value)


def fill_payload(message: pb.Payload, value: Payload) -> pb.Payload:
    """Writes a core payload into an empty wire payload (such as a request's field), in place.

    Filling a field of the enclosing message saves building a payload and copying it in.
    """
    if value.data is not None:
        message.data = value.data
        message.content_type = value.content_type
    elif value.json is not None:
        message.json.update(value.json)
    else:
        message.json.CopyFrom(struct_pb2.Struct())
    return message


def json_payload(value: dict[str, Any]) -> pb.Payload:
    """A JSON object as a wire payload, sent as UTF-8 bytes (cheaper than Struct)."""
    return pb.Payload(
        data=json.dumps(value, separators=(",", ":")).encode(), content_type=JSON_CONTENT_TYPE
    )


# --- capabilities -----------------------------------------------------------


def _schema(text: str, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return value


def capability_from_proto(message: pb.Capability) -> CapabilitySpec:
    """Wire capability to core, validating its name, version, schemas and enums."""
    name = check_name("capability", message.name)
    if not message.version:
        raise InvalidRequest(f"capability {name}: version is required")
    timeout = message.default_timeout.ToTimedelta()
    if timeout < timedelta(0):
        raise InvalidRequest(f"capability {name}: default_timeout must not be negative")
    return CapabilitySpec(
        name=name,
        version=message.version,
        description=message.description,
        input_schema=_schema(message.input_schema_json, f"capability {name}: input schema"),
        output_schema=_schema(message.output_schema_json, f"capability {name}: output schema"),
        idempotent=message.idempotent,
        default_timeout=timeout if timeout > timedelta(0) else timedelta(seconds=30),
        accepts=tuple(classification_from_proto(c) for c in message.accepts),
        returns=tuple(classification_from_proto(c) for c in message.returns),
        fallback=_fallback_from_proto(message),
    )


def _fallback_from_proto(message: pb.Capability) -> CapabilityTarget | None:
    return target_from_proto(message.fallback) if message.HasField("fallback") else None


def capability_to_proto(spec: CapabilitySpec) -> pb.Capability:
    """Core capability to wire."""
    message = pb.Capability(
        name=spec.name,
        version=spec.version,
        description=spec.description,
        input_schema_json=json.dumps(spec.input_schema, sort_keys=True),
        output_schema_json=json.dumps(spec.output_schema, sort_keys=True),
        idempotent=spec.idempotent,
        default_timeout=duration_to_proto(spec.default_timeout),
        accepts=[classification_to_proto(c) for c in spec.accepts],
        returns=[classification_to_proto(c) for c in spec.returns],
    )
    if spec.fallback is not None:
        message.fallback.CopyFrom(target_to_proto(spec.fallback))
    return message


def target_from_proto(message: pb.CapabilityRef) -> CapabilityTarget:
    """Wire capability reference to core, validating both names."""
    return CapabilityTarget(
        domain=check_name("domain", message.domain),
        name=check_name("capability", message.name),
        version=message.version,
    )


def target_to_proto(target: CapabilityTarget) -> pb.CapabilityRef:
    """Core capability reference to wire."""
    return pb.CapabilityRef(domain=target.domain, name=target.name, version=target.version)


# --- tasks ------------------------------------------------------------------


def principal_from_proto(message: pb.Principal) -> Principal:
    """Wire principal to core."""
    return Principal(domain=check_name("domain", message.domain), agent=check_agent(message.agent))


def task_to_proto(
    task: TaskInfo, state: TaskState, message: str = "", now: datetime | None = None
) -> pb.Task:
    """A tracked task and its current state as a wire Task."""
    return fill_task(pb.Task(), task, state, message, now)


def fill_task(
    result: pb.Task,
    task: TaskInfo,
    state: TaskState,
    message: str = "",
    now: datetime | None = None,
) -> pb.Task:
    """Writes a task and its state into an empty wire Task (such as a request's field), in place.

    Invoke builds two Tasks per call (the domain's request and the caller's answer):
    filling the enclosing messages' fields saves building sub-messages and copying them.
    """
    result.task_id = task.task_id
    result.trace_id = task.trace_id
    result.parent_task_id = task.parent_task_id
    caller = result.caller
    caller.domain = task.caller.domain
    caller.agent = task.caller.agent
    target = result.target
    target.domain = task.target.domain
    target.name = task.target.name
    target.version = task.target.version
    status = result.status
    status.state = state_to_proto(state)
    status.message = message
    status.timestamp.CopyFrom(timestamp_to_proto(now) if now is not None else now_timestamp())
    result.idempotency_key = task.idempotency_key
    if task.context_refs:
        result.context_refs.extend(
            pb.ContextRef(key=r.key, version=r.version) for r in task.context_refs
        )
    result.depth = task.depth
    if task.deadline is not None:
        result.deadline.CopyFrom(timestamp_to_proto(task.deadline))
    return result


def task_from_proto(message: pb.Task) -> TaskInfo:
    """A wire Task as core task facts (used by domains receiving Execute)."""
    if not message.task_id:
        raise InvalidRequest("task.task_id is required")
    return TaskInfo(
        task_id=message.task_id,
        trace_id=message.trace_id,
        caller=principal_from_proto(message.caller),
        target=target_from_proto(message.target),
        parent_task_id=message.parent_task_id,
        deadline=timestamp_from_proto(message.deadline) if message.HasField("deadline") else None,
        idempotency_key=message.idempotency_key,
        context_refs=tuple(ContextRef(r.key, r.version) for r in message.context_refs),
        depth=message.depth or 1,
    )


def update_from_proto(event: pb.TaskEvent, *, parse_output: bool = True) -> TaskUpdate:
    """A domain's wire TaskEvent as a core update (output kept as bytes unless parsed)."""
    if not event.HasField("status"):
        raise InvalidRequest("task event without status")
    return TaskUpdate(
        state=state_from_proto(event.status.state),
        message=event.status.message,
        output=payload_from_proto(event.output, field="output", parse_json=parse_output)
        if event.HasField("output")
        else None,
        error=TaskError(event.error.code, event.error.message, event.error.retryable)
        if event.HasField("error")
        else None,
        final=event.final,
        sequence=event.sequence,
    )


def update_to_proto(update: TaskUpdate, task_id: str, sequence: int) -> pb.TaskEvent:
    """A core update as a wire TaskEvent."""
    event = pb.TaskEvent(
        task_id=task_id,
        sequence=sequence,
        status=pb.TaskStatus(
            state=state_to_proto(update.state),
            message=update.message,
            timestamp=now_timestamp(),
        ),
        final=update.final,
    )
    if update.output is not None:
        event.output.CopyFrom(payload_to_proto(update.output))
    if update.error is not None:
        event.error.CopyFrom(
            pb.TaskError(
                code=update.error.code,
                message=update.error.message,
                retryable=update.error.retryable,
            )
        )
    return event


# --- registry ---------------------------------------------------------------


def endpoint_to_proto(endpoint: EndpointRecord, now: datetime) -> gw.EndpointStatus:
    """A registered endpoint and its lease as wire status."""
    return gw.EndpointStatus(
        address=endpoint.address,
        lease_id=endpoint.lease_id,
        lease_expires_at=timestamp_to_proto(endpoint.lease_expires_at),
        live=endpoint.live(now),
    )


def domain_to_proto(
    record: DomainRecord, now: datetime, capabilities: tuple[CapabilitySpec, ...] | None = None
) -> gw.DomainInfo:
    """A registry record as wire DomainInfo (optionally with a filtered catalog)."""
    return gw.DomainInfo(
        name=record.name,
        owner=record.owner,
        endpoints=[endpoint_to_proto(e, now) for e in record.endpoints],
        capabilities=[
            capability_to_proto(c)
            for c in (record.capabilities if capabilities is None else capabilities)
        ],
        registered_at=timestamp_to_proto(record.registered_at),
        updated_at=timestamp_to_proto(record.updated_at),
    )
