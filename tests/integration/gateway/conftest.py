"""An in-process gateway on a free loopback port, with test domains built on the SDK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from domains.sdk import Domain, GatewayClient, TaskContext
from domains.sdk.testing import eventually
from gateway.identity.credentials import INSECURE_ENV
from gateway.server import GatewayApp, build_gateway
from gateway.settings import LeaseSettings, PolicySettings, RoutingSettings, Settings, TlsSettings

ALLOW_ALL = Path(__file__).with_name("policies")
"""Seed policy folder: every principal may invoke anything and register itself."""


def gateway_settings(tmp_path: Path, database_url: str = "", **overrides: Any) -> Settings:
    """Settings for a test gateway: port 0, its own state folder, fast leases.

    Insecure (plaintext, identity asserted in metadata) unless `tls` says otherwise:
    a test-only choice, so these tests exercise the gateway's logic in isolation;
    `test_identity_mtls.py` runs the gateway with real mTLS.
    """
    return Settings(
        listen="127.0.0.1:0",
        state_dir=tmp_path / "state",
        database_url=database_url,
        lease=LeaseSettings(default_ttl=5.0, min_ttl=0.2, reaper_interval=0.05),
        routing=RoutingSettings(max_depth=overrides.pop("max_depth", 8)),
        grace_period=0.0,
        policy=overrides.pop("policy", PolicySettings(seed_dir=ALLOW_ALL)),
        tls=overrides.pop("tls", TlsSettings(insecure=True)),
        **overrides,
    )


@pytest.fixture(autouse=True)
def _insecure_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """SDK clients and domain servers here default to insecure mode (a test-only choice).

    Tests that exercise mTLS pass credentials explicitly, which wins over this.
    """
    monkeypatch.setenv(INSECURE_ENV, "1")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return gateway_settings(tmp_path)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[GatewayApp]:
    app = build_gateway(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


@pytest.fixture
async def client(gateway: GatewayApp) -> AsyncIterator[GatewayClient]:
    async with GatewayClient(gateway.address, domain="caller", insecure=True) as c:
        yield c


async def wait_live(client: GatewayClient, *domains: str, endpoints: int = 1) -> None:
    """Polls the gateway (bounded) until every domain has `endpoints` live endpoints."""

    async def ready() -> bool:
        listed = {d.name: d for d in await client.list_domains()}
        return all(
            name in listed and sum(e.live for e in listed[name].endpoints) >= endpoints
            for name in domains
        )

    await eventually(ready, timeout=10, message=f"domains {domains} never became live")


# --- test domains --------------------------------------------------------------


class EchoIn(BaseModel):
    text: str = Field(min_length=1)
    times: int = Field(default=1, ge=1, le=10)


class EchoOut(BaseModel):
    text: str
    served_by: str = ""
    trace_id: str = ""
    parent_task_id: str = ""
    depth: int = 0


def echo_domain(name: str = "echo", served_by: str = "") -> Domain:
    """`echo/echo` repeats text; `echo/fail` raises; `echo/wait` blocks until canceled."""
    domain = Domain(name=name, owner="tests")
    domain.waiting = asyncio.Event()  # type: ignore[attr-defined]
    domain.canceled = asyncio.Event()  # type: ignore[attr-defined]
    domain.calls = 0  # type: ignore[attr-defined]

    @domain.capability("echo", idempotent=True, timeout=5.0)
    async def echo(ctx: TaskContext, request: EchoIn) -> EchoOut:
        domain.calls += 1  # type: ignore[attr-defined]
        await ctx.report("echoing")
        return EchoOut(
            text=request.text * request.times,
            served_by=served_by,
            trace_id=ctx.trace_id,
            parent_task_id=ctx.task.parent_task_id,
            depth=ctx.task.depth,
        )

    @domain.capability("fail")
    async def fail(ctx: TaskContext, request: EchoIn) -> EchoOut:
        raise RuntimeError(f"cannot echo {request.text}")

    @domain.capability("wait", timeout=30.0)
    async def wait(ctx: TaskContext, request: EchoIn) -> EchoOut:
        domain.waiting.set()  # type: ignore[attr-defined]
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            domain.canceled.set()  # type: ignore[attr-defined]
            raise
        raise AssertionError("unreachable")

    return domain


class RelayIn(BaseModel):
    route: list[str] = Field(default_factory=list)
    text: str = "hi"


class RelayOut(BaseModel):
    inner: dict[str, Any] = Field(default_factory=dict)
    trace_id: str
    task_id: str
    depth: int


def relay_domain(name: str = "relay") -> Domain:
    """`<name>/relay` calls `route[0]` with the rest of the route, as a nested task."""
    domain = Domain(name=name, owner="tests")

    @domain.capability("relay", timeout=10.0)
    async def relay(ctx: TaskContext, request: RelayIn) -> RelayOut:
        inner: dict[str, Any] = {}
        if request.route:
            inner = await ctx.call(
                request.route[0], {"route": request.route[1:], "text": request.text}
            )
        return RelayOut(
            inner=inner, trace_id=ctx.trace_id, task_id=ctx.task_id, depth=ctx.task.depth
        )

    return domain
