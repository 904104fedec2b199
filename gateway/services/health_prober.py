"""Active health checks: probes every live endpoint with `grpc.health.v1` on an interval."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.core.endpoint_health import EndpointHealth
from gateway.core.registry import Registry
from gateway.services.channels import ChannelPool

log = logging.getLogger(__name__)

ORCHESTRATOR_SERVICE = "federation.v1.DomainOrchestrator"


class HealthProber:
    """Probes the endpoints in the routing view and reports to `EndpointHealth`."""

    def __init__(
        self, registry: Registry, pool: ChannelPool, health: EndpointHealth, *, timeout: float
    ) -> None:
        self._registry = registry
        self._pool = pool
        self._health = health
        self._timeout = timeout

    async def probe_all(self) -> None:
        """One round: every live endpoint, concurrently."""
        endpoints = {
            (e.address, record.name)
            for record in self._registry.list_domains()
            for e in record.endpoints
            if e.live(self._registry.now())
        }
        await asyncio.gather(*(self._probe(a, d) for a, d in sorted(endpoints)))

    async def _probe(self, address: str, domain: str) -> None:
        stub = health_pb2_grpc.HealthStub(self._pool.get(address, domain))
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=ORCHESTRATOR_SERVICE), timeout=self._timeout
            )
            serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError as exc:
            log.debug("probe of %s failed: %s", address, exc.code().name)
            serving = False
        self._health.record_probe(address, serving)
