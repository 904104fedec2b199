"""A capability's fallback serves when the primary is unavailable, and says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from domains.sdk import Domain, GatewayClient, TaskContext
from domains.sdk.testing import eventually, serve_in_process
from federation.v1 import common_pb2 as pb
from gateway.core.decision import Action, Decision
from gateway.core.models import Principal
from gateway.errors import DeadlineExceeded, DomainUnavailable, PolicyDenied
from gateway.server import GatewayApp, build_gateway
from gateway.settings import ResilienceSettings

from .conftest import gateway_settings, wait_live
from .flaky_domain import FlakyDomain

BACKUP = pb.CapabilityRef(domain="backup", name="work")


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


class Served(BaseModel):
    served_by: str


def backup_domain() -> Domain:
    domain = Domain(name="backup", owner="tests")
    domain.calls = 0  # type: ignore[attr-defined]

    @domain.capability("work", version="1.0.0")
    async def work(ctx: TaskContext, request: Anything) -> Served:
        domain.calls += 1  # type: ignore[attr-defined]
        return Served(served_by="backup")

    return domain


class DenyDomain:
    """A real PolicyDecider that refuses every invocation of one domain (it may register)."""

    def __init__(self, denied: str) -> None:
        self.denied = denied

    def decide(self, principal: Principal, domain: str, obj: str, action: Action) -> Decision:
        if domain == self.denied and action is Action.INVOKE:
            return Decision(False, f"{principal} may not {action} {domain}/{obj}", "deny-test")
        return Decision(True, "allowed", "allow-test")


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayApp]:
    resilience = ResilienceSettings(breaker_min_calls=2, breaker_cooldown=30, probe_interval=0)
    app = build_gateway(gateway_settings(tmp_path, resilience=resilience))
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


async def test_fallback_serves_when_the_primary_fails_before_starting(
    gateway: GatewayApp,
) -> None:
    primary = FlakyDomain("primary", sick=True)
    backup = backup_domain()
    await primary.start(gateway.address, idempotent=False, fallback=BACKUP)
    try:
        async with (
            serve_in_process(backup, gateway=gateway.address),
            GatewayClient(gateway.address, domain="caller") as client,
        ):
            await wait_live(client, "primary", "backup")
            result = await client.invoke("primary/work", {})
            events = [e async for e in client.invoke_stream("primary/work", {})]
    finally:
        await primary.stop()
    assert result.output_or_raise() == {"served_by": "backup"}
    assert result.served_by == "backup/work@1.0.0"
    assert result.fallback_for == "primary/work"
    assert "is sick" in result.fallback_reason
    assert any("falling back to backup/work" in e.message for e in events)
    assert events[-1].output == {"served_by": "backup"}
    assert primary.executions == 0
    assert backup.calls == 2  # type: ignore[attr-defined]


async def test_fallback_serves_while_the_circuit_is_open(gateway: GatewayApp) -> None:
    primary = FlakyDomain("primary", sick=True)
    await primary.start(gateway.address, idempotent=False, fallback=BACKUP)
    try:
        async with (
            serve_in_process(backup_domain(), gateway=gateway.address),
            GatewayClient(gateway.address, domain="caller") as client,
        ):
            await wait_live(client, "primary", "backup")
            for _ in range(2):  # opens the breaker (min calls 2, all failing)
                await client.invoke("primary/work", {})
            refusals = primary.refusals
            result = await client.invoke("primary/work", {})
    finally:
        await primary.stop()
    assert result.ok
    assert "circuit open" in result.fallback_reason
    assert primary.refusals == refusals  # failing fast: the primary was not even tried


async def test_fallback_serves_a_domain_with_no_live_endpoint(gateway: GatewayApp) -> None:
    primary = FlakyDomain("primary")
    await primary.start(gateway.address, idempotent=False, fallback=BACKUP, lease_ttl=0.3)
    await primary.stop()
    async with (
        serve_in_process(backup_domain(), gateway=gateway.address),
        GatewayClient(gateway.address, domain="caller") as client,
    ):
        await wait_live(client, "backup")

        async def expired() -> bool:
            info = await client.describe_domain("primary")
            return not any(e.live for e in info.endpoints)

        await eventually(expired, timeout=5)
        result = await client.invoke("primary/work", {})
    assert result.output_or_raise() == {"served_by": "backup"}
    assert "no live endpoint" in result.fallback_reason


async def test_no_fallback_once_the_primary_has_started(gateway: GatewayApp) -> None:
    started = asyncio.Event()
    primary = Domain(name="primary", owner="tests")

    @primary.capability("work", fallback="backup/work")
    async def work(ctx: TaskContext, request: Anything) -> Served:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    backup = backup_domain()
    async with (
        serve_in_process(backup, gateway=gateway.address),
        serve_in_process(primary, gateway=gateway.address) as server,
        GatewayClient(gateway.address, domain="caller") as client,
    ):
        await wait_live(client, "primary", "backup")
        call = asyncio.create_task(client.invoke("primary/work", {}))
        await eventually(started.is_set, timeout=5)
        assert server._server is not None
        await server._server.stop(None)  # dies mid-task
        with pytest.raises(DomainUnavailable):
            await call
    assert backup.calls == 0  # type: ignore[attr-defined]  # work may have started: never twice


async def test_the_fallback_needs_its_own_policy_decision(tmp_path: Path) -> None:
    app = build_gateway(
        gateway_settings(tmp_path, resilience=ResilienceSettings(probe_interval=0)),
        policy=DenyDomain("backup"),
    )
    await app.start()
    primary = FlakyDomain("primary", sick=True)
    backup = backup_domain()
    try:
        await primary.start(app.address, idempotent=False, fallback=BACKUP)
        async with (
            serve_in_process(backup, gateway=app.address),
            GatewayClient(app.address, domain="caller") as client,
        ):
            await wait_live(client, "primary")

            async def backup_registered() -> bool:  # hidden from `caller`: it may not invoke it
                return any(d.name == "backup" and d.endpoints for d in app.registry.list_domains())

            await eventually(backup_registered, timeout=10)
            with pytest.raises(PolicyDenied, match="may not invoke backup/work"):
                await client.invoke("primary/work", {})
    finally:
        await primary.stop()
        await app.stop(0)
    assert backup.calls == 0  # type: ignore[attr-defined]


async def test_a_hanging_primary_times_out_opens_its_circuit_and_the_fallback_serves(
    gateway: GatewayApp,
) -> None:
    primary = FlakyDomain("primary", hang=True)
    await primary.start(gateway.address, idempotent=False, fallback=BACKUP)
    try:
        async with (
            serve_in_process(backup_domain(), gateway=gateway.address),
            GatewayClient(gateway.address, domain="caller") as client,
        ):
            await wait_live(client, "primary", "backup")
            for _ in range(2):  # the breaker's minimum: both calls hang until the deadline
                with pytest.raises(DeadlineExceeded):
                    await client.invoke("primary/work", {}, timeout=0.3)
            result = await client.invoke("primary/work", {}, timeout=5)
    finally:
        await primary.stop()
    assert result.output_or_raise() == {"served_by": "backup"}
    assert "circuit open" in result.fallback_reason
    assert primary.refusals == 2  # the third call never reached the hanging primary
