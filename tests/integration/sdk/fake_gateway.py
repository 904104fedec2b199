"""FakeGatewayRegistry: a test-only stand-in for the federation gateway.

The real gateway is built in parallel; this fake implements just enough of the
`FederationGateway` service (registry calls, Invoke, InvokeStream) to test the
SDK's side of the contract, and records every request with its metadata.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.services import convert

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Seen:
    """One request the fake received and the metadata it came with."""

    request: Any
    metadata: dict[str, str]
    time_remaining: float | None = None


def _metadata(context: Context) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _completed(request: gw.InvokeRequest) -> gw.InvokeResponse:
    """Default Invoke answer: a completed task echoing the input as output."""
    return gw.InvokeResponse(
        task=pb.Task(
            task_id="fake-task",
            trace_id=request.trace_id or "fake-trace",
            parent_task_id=request.parent_task_id,
            status=pb.TaskStatus(state=pb.TASK_STATE_COMPLETED, message="done"),
        ),
        output=convert.json_payload({"echo": convert.payload_from_proto(request.input).json}),
    )


@dataclass
class FakeGatewayRegistry(gw_grpc.FederationGatewayServicer):
    """Fake gateway: grants leases, records calls, and fails on demand."""

    heartbeat_interval: float = 0.05
    lease_ttl: float = 1.0
    fail_registers: int = 0
    fail_heartbeats: int = 0
    invoke: Callable[[gw.InvokeRequest], gw.InvokeResponse] = _completed
    invoke_status: grpc.StatusCode | None = None
    registrations: list[Seen] = field(default_factory=list)
    register_attempts: int = 0
    heartbeats: list[Seen] = field(default_factory=list)
    deregistrations: list[Seen] = field(default_factory=list)
    invocations: list[Seen] = field(default_factory=list)
    leases: dict[str, gw.RegisterDomainRequest] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def forget_leases(self) -> None:
        """Simulates expired leases (or a gateway that lost its state)."""
        self.leases.clear()

    @property
    def lease_ids(self) -> list[str]:
        """Lease ids granted so far, in order."""
        return [s.metadata["granted-lease"] for s in self.registrations]

    async def RegisterDomain(  # noqa: N802
        self, request: gw.RegisterDomainRequest, context: Context
    ) -> gw.RegisterDomainResponse:
        self.register_attempts += 1
        if self.fail_registers > 0:
            self.fail_registers -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "registry store is down")
        lease_id = f"lease-{next(self._ids)}"
        self.leases[lease_id] = request
        self.registrations.append(Seen(request, {**_metadata(context), "granted-lease": lease_id}))
        return gw.RegisterDomainResponse(
            lease_id=lease_id,
            lease_ttl=convert.duration_to_proto(timedelta(seconds=self.lease_ttl)),
            heartbeat_interval=convert.duration_to_proto(
                timedelta(seconds=self.heartbeat_interval)
            ),
            lease_expires_at=convert.timestamp_to_proto(
                datetime.now(UTC) + timedelta(seconds=self.lease_ttl)
            ),
        )

    async def Heartbeat(  # noqa: N802
        self, request: gw.HeartbeatRequest, context: Context
    ) -> gw.HeartbeatResponse:
        if self.fail_heartbeats > 0:
            self.fail_heartbeats -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try later")
        if request.lease_id not in self.leases:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"lease {request.lease_id} unknown")
        self.heartbeats.append(Seen(request, _metadata(context)))
        return gw.HeartbeatResponse(
            lease_expires_at=convert.timestamp_to_proto(
                datetime.now(UTC) + timedelta(seconds=self.lease_ttl)
            )
        )

    async def DeregisterDomain(  # noqa: N802
        self, request: gw.DeregisterDomainRequest, context: Context
    ) -> gw.DeregisterDomainResponse:
        self.deregistrations.append(Seen(request, _metadata(context)))
        removed = 1 if self.leases.pop(request.lease_id, None) is not None else 0
        return gw.DeregisterDomainResponse(removed_endpoints=removed)

    async def ListDomains(  # noqa: N802
        self, request: gw.ListDomainsRequest, context: Context
    ) -> gw.ListDomainsResponse:
        names = sorted({r.domain for r in self.leases.values()})
        return gw.ListDomainsResponse(domains=[self._info(n) for n in names])

    async def DescribeDomain(  # noqa: N802
        self, request: gw.DescribeDomainRequest, context: Context
    ) -> gw.DomainInfo:
        if not any(r.domain == request.domain for r in self.leases.values()):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no domain {request.domain}")
        return self._info(request.domain)

    async def Invoke(  # noqa: N802
        self, request: gw.InvokeRequest, context: Context
    ) -> gw.InvokeResponse:
        self.invocations.append(Seen(request, _metadata(context), context.time_remaining()))
        if self.invoke_status is not None:
            await context.abort(self.invoke_status, "refused by the fake")
        return self.invoke(request)

    async def InvokeStream(  # noqa: N802
        self, request: gw.InvokeRequest, context: Context
    ) -> AsyncIterator[pb.TaskEvent]:
        self.invocations.append(Seen(request, _metadata(context)))
        if self.invoke_status is not None:
            await context.abort(self.invoke_status, "refused by the fake")
        response = self.invoke(request)
        yield pb.TaskEvent(
            task_id=response.task.task_id,
            sequence=1,
            status=pb.TaskStatus(state=pb.TASK_STATE_WORKING, message="working"),
        )
        yield pb.TaskEvent(
            task_id=response.task.task_id,
            sequence=2,
            status=response.task.status,
            output=response.output,
            final=True,
        )

    def _info(self, name: str) -> gw.DomainInfo:
        leases = {k: r for k, r in self.leases.items() if r.domain == name}
        last = list(leases.values())[-1]
        now = convert.timestamp_to_proto(datetime.now(UTC))
        return gw.DomainInfo(
            name=name,
            owner=last.owner,
            endpoints=[
                gw.EndpointStatus(
                    address=r.endpoint.address, lease_id=k, lease_expires_at=now, live=True
                )
                for k, r in leases.items()
            ],
            capabilities=last.capabilities,
            registered_at=now,
            updated_at=now,
        )
