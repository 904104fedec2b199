"""A real DomainOrchestrator server whose availability the test controls.

Not a mock: it serves the real gRPC interface on a loopback port and registers with the
gateway over the real RegisterDomain RPC. While `sick`, Execute answers UNAVAILABLE (the
endpoint is up but failing); `serving` drives its grpc.health.v1 status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from federation.v1 import orchestrator_pb2 as orch
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.services import convert, metadata

SERVICE = "federation.v1.DomainOrchestrator"


@dataclass
class FlakyDomain(orch_grpc.DomainOrchestratorServicer):
    name: str
    sick: bool = False
    hang: bool = False
    linger: bool = False
    """Keeps the stream open after the final event (a domain that breaks the protocol)."""
    executions: int = 0
    refusals: int = 0
    server: grpc.aio.Server | None = None
    health: health_aio.HealthServicer = field(default_factory=health_aio.HealthServicer)
    address: str = ""

    async def Execute(  # noqa: N802
        self, request: orch.ExecuteRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.TaskEvent]:
        if self.sick:
            self.refusals += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.address} is sick")
        if self.hang:
            self.refusals += 1
            await asyncio.Event().wait()  # never answers; the caller's deadline decides
        self.executions += 1
        yield pb.TaskEvent(
            task_id=request.task.task_id,
            sequence=1,
            status=pb.TaskStatus(state=pb.TASK_STATE_COMPLETED),
            output=convert.json_payload({"served_by": self.address}),
            final=True,
        )
        if self.linger:
            await asyncio.Event().wait()  # ended only by the gateway's cancellation

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set(SERVICE, status)

    async def start(
        self,
        gateway: str,
        *,
        idempotent: bool,
        lease_ttl: float = 30.0,
        fallback: pb.CapabilityRef | None = None,
    ) -> None:
        self.server = grpc.aio.server()
        orch_grpc.add_DomainOrchestratorServicer_to_server(self, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        await self.server.start()
        await self.set_serving(True)
        async with grpc.aio.insecure_channel(gateway) as channel:
            await gw_grpc.FederationGatewayStub(channel).RegisterDomain(
                gw.RegisterDomainRequest(
                    domain=self.name,
                    owner="tests",
                    endpoint=gw.Endpoint(address=self.address),
                    capabilities=[
                        pb.Capability(
                            name="work", version="1", idempotent=idempotent, fallback=fallback
                        )
                    ],
                    lease_ttl=convert.duration_to_proto(timedelta(seconds=lease_ttl)),
                ),
                metadata=((metadata.CALLER_DOMAIN, self.name),),
            )

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
