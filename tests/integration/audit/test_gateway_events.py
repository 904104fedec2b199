"""What the gateway records: calls with their routing, registry changes, renewals in bulk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from domains.sdk import GatewayClient
from domains.sdk.testing import eventually, serve_in_process
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.core.audit_event import AuditEvent, AuditReceipt, EventType
from gateway.core.audit_query import AuditQuery
from gateway.core.audit_record import AuditRecord
from gateway.errors import AuditUnavailable
from gateway.server import GatewayApp, build_gateway
from gateway.services import metadata
from gateway.settings import AuditSettings
from tests.integration.gateway.conftest import echo_domain, gateway_settings, wait_live


@pytest.fixture
async def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GatewayApp]:
    monkeypatch.setenv("FEDGATE_INSECURE", "1")
    app = build_gateway(gateway_settings(tmp_path, audit=AuditSettings(renewal_summary_every=0.2)))
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


async def records(app: GatewayApp, **filters: object) -> list[AuditRecord]:
    assert app.audit_writer is not None
    query = AuditQuery(newest_first=False, limit=1000, **filters)  # type: ignore[arg-type]
    page = await asyncio.to_thread(app.audit_writer.store.query, query)
    return page.records


async def test_calls_registrations_and_renewals_are_recorded(gateway: GatewayApp) -> None:
    async with (
        serve_in_process(echo_domain(), gateway=gateway.address, lease_ttl=0.6) as server,
        GatewayClient(gateway.address, domain="caller", insecure=True) as client,
    ):
        await wait_live(client, "echo")
        result = await client.invoke("echo/echo", {"text": "hi"})
        assert result.ok

        async def renewed() -> bool:
            return bool(await records(gateway, event_type="lease.renewed"))

        await eventually(renewed, timeout=10, message="no lease.renewed record")
    requested, finished = await records(gateway, trace_id=result.trace_id)
    assert (requested.event_type, finished.event_type) == ("task.requested", "task.finished")
    assert requested.decision == finished.decision == "allow"
    assert requested.actor == "caller"
    assert (requested.source_domain, requested.target_domain) == ("caller", "echo")
    assert requested.span_id == finished.span_id == result.task_id
    assert finished.outcome == "completed"
    assert finished.duration_us > 0
    assert finished.attribute_values()["endpoints"] == [server.address]
    [registered] = await records(gateway, event_type="domain.registered")
    assert registered.target_domain == "echo"
    assert await records(gateway, event_type="domain.deregistered")
    summary = (await records(gateway, event_type="lease.renewed"))[0]
    assert summary.attribute_values()["renewals"]["echo"] >= 1


class ExpiryRefusingSink:
    """Keeps events in memory; refuses lease expiries while `down` (an audit outage)."""

    def __init__(self) -> None:
        self.down = True
        self.events: list[AuditEvent] = []

    async def record(self, events: list[AuditEvent]) -> list[AuditReceipt]:
        if self.down and any(e.type is EventType.LEASE_EXPIRED for e in events):
            raise AuditUnavailable("audit trail unavailable: test outage")
        self.events += events
        return []


async def test_lease_expiries_wait_for_the_audit_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDGATE_INSECURE", "1")
    sink = ExpiryRefusingSink()
    app = build_gateway(gateway_settings(tmp_path), audit=sink)
    await app.start()
    channel = grpc.aio.insecure_channel(app.address)
    try:
        await gw_grpc.FederationGatewayStub(channel).RegisterDomain(
            gw.RegisterDomainRequest(
                domain="ghost",
                owner="tests",
                endpoint=gw.Endpoint(address="127.0.0.1:1"),
                capabilities=[pb.Capability(name="noop", version="1", input_schema_json="{}")],
                lease_ttl=duration_pb2.Duration(nanos=300_000_000),
            ),
            metadata=((metadata.CALLER_DOMAIN, "ghost"),),
        )
        # The lease runs out; the reaper removes the endpoint but cannot record it yet.
        await eventually(
            lambda: _no_live(app), timeout=10, message="the expired endpoint stayed live"
        )
        await asyncio.sleep(0.3)
        assert not [e for e in sink.events if e.type is EventType.LEASE_EXPIRED]
        sink.down = False
        await eventually(
            lambda: _expiry_recorded(sink), timeout=10, message="the expiry was never recorded"
        )
    finally:
        await channel.close()
        await app.stop(0)


async def _no_live(app: GatewayApp) -> bool:
    return not app.registry.describe("ghost").live_endpoints(app.registry.now())


async def _expiry_recorded(sink: ExpiryRefusingSink) -> bool:
    return [e.target_domain for e in sink.events if e.type is EventType.LEASE_EXPIRED] == ["ghost"]
