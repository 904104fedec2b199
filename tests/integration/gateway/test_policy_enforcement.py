"""Every gateway RPC is checked against the real default policy (policies/).

Denied calls get PERMISSION_DENIED with the reason naming the missing permission
and never reach the target domain; listings show only what the caller may invoke.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from domains.sdk.testing import eventually, serve_in_process
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.errors import NotFound, PolicyDenied
from gateway.server import GatewayApp, build_gateway

from .policy_helpers import client_as, counting_domain, default_policy_settings, identity

REFUND = {"case_id": "case-1", "customer_id": "c-1", "order_id": "o-1", "amount": 10}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayApp]:
    app = build_gateway(default_policy_settings(tmp_path))
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


@pytest.fixture
async def federation(gateway: GatewayApp) -> AsyncIterator[dict[str, object]]:
    """risk (score, audit-log) and finance (issue-refund) registered under the real policy."""
    risk = counting_domain("risk", "score", "recalibrate")
    finance = counting_domain("finance", "issue-refund")
    async with (
        serve_in_process(risk, gateway=gateway.address),
        serve_in_process(finance, gateway=gateway.address),
        client_as(gateway.address, "support") as support,
    ):

        async def live() -> bool:
            return {d.name for d in await support.list_domains()} == {"risk", "finance"}

        await eventually(live, timeout=10, message="risk and finance never registered")
        yield {"risk": risk, "finance": finance}


async def test_allowed_calls_go_through(gateway: GatewayApp, federation: dict[str, object]) -> None:
    async with client_as(gateway.address, "support") as support:
        assert (await support.invoke("finance/issue-refund", REFUND)).ok
        assert (await support.invoke("risk/score", {})).ok
    async with client_as(gateway.address, "finance", agent="agent/risk-check") as agent:
        assert (await agent.invoke("risk/score", {})).ok


async def test_denied_invoke_never_reaches_the_domain(
    gateway: GatewayApp, federation: dict[str, object]
) -> None:
    finance = federation["finance"]
    async with client_as(gateway.address, "cli") as operator:
        with pytest.raises(PolicyDenied) as denied:
            await operator.invoke("finance/issue-refund", REFUND)
        assert denied.value.message == (
            "cli may not invoke finance/issue-refund (needs invoke on finance/issue-refund)"
        )
        with pytest.raises(PolicyDenied, match="needs invoke on risk/recalibrate"):
            await operator.invoke("risk/recalibrate", {})
        with pytest.raises(
            PolicyDenied, match=r"cli/agent/night-shift may not invoke finance/issue-refund"
        ):
            await operator.invoke("finance/issue-refund", REFUND, agent="agent/night-shift")
        stream = operator.invoke_stream("finance/issue-refund", REFUND)
        with pytest.raises(PolicyDenied):
            async for _ in stream:
                pass
    assert finance.calls == 0  # type: ignore[attr-defined]
    assert federation["risk"].calls == 0  # type: ignore[attr-defined]


async def test_denied_invoke_is_permission_denied_on_the_wire(
    gateway: GatewayApp, federation: dict[str, object]
) -> None:
    request = gw.InvokeRequest(target=pb.CapabilityRef(domain="finance", name="issue-refund"))
    request.input.json.update(REFUND)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gw_grpc.FederationGatewayStub(channel).Invoke(request, metadata=identity("risk"))
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == (
        "risk may not invoke finance/issue-refund (needs invoke on finance/issue-refund)"
    )
    assert federation["finance"].calls == 0  # type: ignore[attr-defined]


async def test_listing_shows_only_what_the_caller_may_invoke(
    gateway: GatewayApp, federation: dict[str, object]
) -> None:
    async with client_as(gateway.address, "cli") as operator:
        listed = {d.name: [c.name for c in d.capabilities] for d in await operator.list_domains()}
        assert listed == {"risk": ["score"]}
        assert [c.name for c in (await operator.describe_domain("risk")).capabilities] == ["score"]
        with pytest.raises(NotFound) as hidden:
            await operator.describe_domain("finance")
        with pytest.raises(NotFound) as unknown:
            await operator.describe_domain("nowhere")
    # A hidden domain and an unknown one look the same: nothing leaks.
    assert hidden.value.message == (
        "domain 'finance' is not registered or offers nothing cli may invoke"
    )
    assert unknown.value.message == (
        "domain 'nowhere' is not registered or offers nothing cli may invoke"
    )
    async with client_as(gateway.address, "ghost") as stranger:
        assert await stranger.list_domains(include_offline=True) == []
    async with client_as(gateway.address, "support") as support:
        listed = {d.name: [c.name for c in d.capabilities] for d in await support.list_domains()}
        assert listed == {"finance": ["issue-refund"], "risk": ["score"]}


async def _register(address: str, caller: str, domain: str) -> gw.RegisterDomainResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        return await gw_grpc.FederationGatewayStub(channel).RegisterDomain(
            gw.RegisterDomainRequest(
                domain=domain,
                owner="tests",
                endpoint=gw.Endpoint(address="127.0.0.1:1"),
                capabilities=[pb.Capability(name="noop", version="1", input_schema_json="{}")],
                lease_ttl=duration_pb2.Duration(seconds=5),
            ),
            metadata=identity(caller),
        )


async def test_registration_needs_register_on_the_own_domain(gateway: GatewayApp) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _register(gateway.address, "ghost", "ghost")
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "ghost may not register ghost (needs register on ghost)"

    # The self-only rule holds whatever the policy says.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _register(gateway.address, "support", "risk")
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "a domain may only register, renew or deregister itself" in (info.value.details() or "")

    lease = await _register(gateway.address, "risk", "risk")
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = gw_grpc.FederationGatewayStub(channel)
        for call in (
            stub.Heartbeat(
                gw.HeartbeatRequest(domain="ghost", lease_id=lease.lease_id),
                metadata=identity("ghost"),
            ),
            stub.DeregisterDomain(
                gw.DeregisterDomainRequest(domain="ghost"), metadata=identity("ghost")
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert "needs register on ghost" in (info.value.details() or "")
        await stub.Heartbeat(
            gw.HeartbeatRequest(domain="risk", lease_id=lease.lease_id), metadata=identity("risk")
        )
        await stub.DeregisterDomain(
            gw.DeregisterDomainRequest(domain="risk"), metadata=identity("risk")
        )


async def test_invoke_shows_nothing_of_a_catalog_to_a_caller_the_policy_refuses(
    gateway: GatewayApp, federation: dict[str, object]
) -> None:
    async with (
        client_as(gateway.address, "cli") as operator,
        client_as(gateway.address, "support") as support,
    ):
        # No permission on finance at all: finance reads as unknown, like in listings.
        with pytest.raises(NotFound) as unknown:
            await operator.invoke("finance/wire-money", {})
        assert unknown.value.message == "domain 'finance' is not registered"
        # Some permission on risk: only what the caller may invoke is offered.
        with pytest.raises(NotFound) as missing:
            await operator.invoke("risk/nothing", {})
        assert missing.value.message.endswith("(offers: score@1.0.0)")
        # A permitted caller still sees the domain's offers it may invoke.
        with pytest.raises(NotFound, match=r"offers: issue-refund@1.0.0\)$"):
            await support.invoke("finance/wire-money", {})
