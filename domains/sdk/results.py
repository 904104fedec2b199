"""The gateway's answers as SDK types: invocation results, domain descriptions, leases.

Built from wire messages with the pieces of `gateway.services.convert`, so the SDK
never parses a wire type the gateway would read differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domains.sdk.errors import CallFailed
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from gateway.core.models import CapabilitySpec, Payload, TaskError, TaskState
from gateway.errors import InvalidRequest
from gateway.services import convert


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """The final outcome of a task invoked through the gateway.

    Attributes:
        task_id: Id the gateway gave the task.
        trace_id: Trace the task ran in.
        state: The state the task ended in.
        output: JSON output when the task completed, else None.
        message: Status message (error text, or the question when input is required).
        error: Error detail when the task failed.
    """

    task_id: str
    trace_id: str
    state: TaskState
    output: dict[str, Any] | None = None
    message: str = ""
    error: TaskError | None = None
    served_by: str = ""
    """`domain/capability@version` that ran the task."""
    fallback_for: str = ""
    """The capability asked for, when a fallback served the call instead; else empty."""
    fallback_reason: str = ""
    """Why the fallback was used."""

    @property
    def ok(self) -> bool:
        """True when the task completed."""
        return self.state is TaskState.COMPLETED

    def output_or_raise(self) -> dict[str, Any]:
        """The output of a completed task.

        Raises:
            domains.sdk.errors.CallFailed: The task ended in any other state.
        """
        if self.state is TaskState.COMPLETED:
            return self.output if self.output is not None else {}
        detail = self.error.message if self.error is not None else self.message
        raise CallFailed(
            f"task {self.task_id} ended {self.state.value}" + (f": {detail}" if detail else ""),
            task_id=self.task_id,
            state=self.state,
            error=self.error,
        )


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """One replica of a domain's orchestrator as the registry reports it.

    Attributes:
        address: `host:port` of the replica.
        lease_id: Lease the replica holds.
        lease_expires_at: When the lease runs out unless renewed.
        live: False once the lease expired (the endpoint is out of routing).
    """

    address: str
    lease_id: str
    lease_expires_at: datetime
    live: bool


@dataclass(frozen=True, slots=True)
class DomainInfo:
    """A registered domain as the gateway describes it.

    Attributes:
        name: Domain name.
        owner: Owning team.
        endpoints: Registered replicas, live and expired.
        capabilities: The current catalog.
        registered_at: First registration time.
        updated_at: Last catalog change.
    """

    name: str
    owner: str
    endpoints: tuple[EndpointInfo, ...]
    capabilities: tuple[CapabilitySpec, ...]
    registered_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """The lease the gateway granted a registered endpoint.

    Attributes:
        lease_id: Id to name in heartbeats and deregistration.
        ttl: Granted lease length.
        heartbeat_interval: How often to heartbeat.
        expires_at: When the lease runs out unless renewed.
    """

    lease_id: str
    ttl: timedelta
    heartbeat_interval: timedelta
    expires_at: datetime


def json_output(payload: pb.Payload, task_id: str) -> dict[str, Any]:
    """A task's wire output payload as a JSON object.

    Raises:
        gateway.errors.InvalidRequest: The output is not a JSON object.
    """
    return json_of(convert.payload_from_proto(payload, field="output"), task_id)


def json_of(value: Payload, task_id: str) -> dict[str, Any]:
    """A task's output as a JSON object.

    Raises:
        gateway.errors.InvalidRequest: The output is bytes of another content type.
    """
    if value.json is None:
        raise InvalidRequest(f"task {task_id}: output is {value.content_type}, not JSON")
    return dict(value.json)


def invoke_result_from_proto(message: gw.InvokeResponse) -> InvokeResult:
    """A wire InvokeResponse as an `InvokeResult`."""
    task = message.task
    return InvokeResult(
        task_id=task.task_id,
        trace_id=task.trace_id,
        state=convert.state_from_proto(task.status.state),
        output=json_output(message.output, task.task_id) if message.HasField("output") else None,
        message=task.status.message,
        error=TaskError(message.error.code, message.error.message, message.error.retryable)
        if message.HasField("error")
        else None,
        served_by=str(convert.target_from_proto(task.target)) if task.HasField("target") else "",
        fallback_for=str(convert.target_from_proto(message.fallback_for))
        if message.HasField("fallback_for")
        else "",
        fallback_reason=message.fallback_reason,
    )


def domain_info_from_proto(message: gw.DomainInfo) -> DomainInfo:
    """A wire DomainInfo as a `DomainInfo`."""
    return DomainInfo(
        name=message.name,
        owner=message.owner,
        endpoints=tuple(
            EndpointInfo(
                address=e.address,
                lease_id=e.lease_id,
                lease_expires_at=convert.timestamp_from_proto(e.lease_expires_at),
                live=e.live,
            )
            for e in message.endpoints
        ),
        capabilities=tuple(convert.capability_from_proto(c) for c in message.capabilities),
        registered_at=convert.timestamp_from_proto(message.registered_at),
        updated_at=convert.timestamp_from_proto(message.updated_at),
    )


def lease_from_proto(message: gw.RegisterDomainResponse) -> Lease:
    """A wire RegisterDomainResponse as a `Lease`."""
    if not message.lease_id:
        raise InvalidRequest("register response without lease_id")
    return Lease(
        lease_id=message.lease_id,
        ttl=message.lease_ttl.ToTimedelta(),
        heartbeat_interval=message.heartbeat_interval.ToTimedelta(),
        expires_at=convert.timestamp_from_proto(message.lease_expires_at),
    )
