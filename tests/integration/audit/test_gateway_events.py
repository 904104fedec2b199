"""What the gateway records: calls with their routing, registry changes, renewals in bulk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domains.sdk import GatewayClient
from domains.sdk.testing import eventually, serve_in_process
from gateway.core.audit_query import AuditQuery
from gateway.core.audit_record import AuditRecord
from gateway.server import GatewayApp, build_gateway
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
