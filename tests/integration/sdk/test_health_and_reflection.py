"""The domain server answers standard health checks and server reflection."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from domains.sdk import DomainServer
from domains.sdk.orchestrator_service import SERVICE_NAME


async def test_health_is_serving_overall_and_for_the_orchestrator(risk: DomainServer) -> None:
    async with grpc.aio.insecure_channel(risk.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_orchestrator_service(risk: DomainServer) -> None:
    async with grpc.aio.insecure_channel(risk.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        response = await anext(aiter(call))

    names = {s.name for s in response.list_services_response.service}
    assert SERVICE_NAME == "federation.v1.DomainOrchestrator"
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
