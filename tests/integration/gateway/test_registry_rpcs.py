"""Registration, leases and the registry RPCs against a real in-process gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from domains.sdk import GatewayClient
from domains.sdk.testing import eventually, serve_in_process
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.errors import DomainUnavailable, NotFound
from gateway.server import GatewayApp
from gateway.services import metadata

from .conftest import echo_domain, wait_live


def _identity(domain: str) -> tuple[tuple[str, str], ...]:
    return ((metadata.CALLER_DOMAIN, domain),)


async def _register_raw(
    address: str, domain: str, endpoint: str, ttl: float, caps: list[pb.Capability] | None = None
) -> gw.RegisterDomainResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        return await gw_grpc.FederationGatewayStub(channel).RegisterDomain(
            gw.RegisterDomainRequest(
                domain=domain,
                owner="tests",
                endpoint=gw.Endpoint(address=endpoint),
                capabilities=caps
                if caps is not None
                else [pb.Capability(name="noop", version="1", input_schema_json="{}")],
                lease_ttl=duration_pb2.Duration(seconds=int(ttl), nanos=int(ttl % 1 * 1e9)),
            ),
            metadata=_identity(domain),
        )


async def test_registered_domain_is_listed_and_described(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address) as server:
        await wait_live(client, "echo")
        info = await client.describe_domain("echo")
        assert info.owner == "tests"
        assert [e.address for e in info.endpoints] == [server.address]
        assert {c.name for c in info.capabilities} == {"echo", "fail", "wait"}
        echo = next(c for c in info.capabilities if c.name == "echo")
        assert echo.idempotent
        assert echo.input_schema["required"] == ["text"]
    # Graceful stop deregistered the endpoint; the domain's record stays.
    assert [d.name for d in await client.list_domains()] == []
    offline = await client.list_domains(include_offline=True)
    assert [d.name for d in offline] == ["echo"]
    assert offline[0].endpoints == ()


async def test_reregistration_replaces_the_catalog(gateway: GatewayApp) -> None:
    await _register_raw(
        gateway.address, "shop", "127.0.0.1:1", 5, [pb.Capability(name="old", version="1")]
    )
    await _register_raw(
        gateway.address, "shop", "127.0.0.1:1", 5, [pb.Capability(name="new", version="2")]
    )
    async with GatewayClient(gateway.address, domain="caller") as client:
        info = await client.describe_domain("shop")
        assert [(c.name, c.version) for c in info.capabilities] == [("new", "2")]
        with pytest.raises(NotFound, match="no capability 'old'"):
            await client.invoke("shop/old", {})


async def test_expired_lease_leaves_routing_but_not_history(gateway: GatewayApp) -> None:
    lease = await _register_raw(gateway.address, "brief", "127.0.0.1:1", 0.3)
    async with GatewayClient(gateway.address, domain="caller") as client:

        async def expired() -> bool:
            info = await client.describe_domain("brief")
            return info.endpoints == ()

        await eventually(expired, timeout=5, message="the reaper never removed the endpoint")
        with pytest.raises(DomainUnavailable, match="no live endpoint"):
            await client.invoke("brief/noop", {})
        assert [d.name for d in await client.list_domains(include_offline=True)] == ["brief"]
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gw_grpc.FederationGatewayStub(channel).Heartbeat(
                gw.HeartbeatRequest(domain="brief", lease_id=lease.lease_id),
                metadata=_identity("brief"),
            )
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert "register again" in (info.value.details() or "")


async def test_heartbeat_keeps_an_endpoint_live(gateway: GatewayApp, client: GatewayClient) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address, lease_ttl=0.3):
        await wait_live(client, "echo")
        first = (await client.describe_domain("echo")).endpoints[0].lease_expires_at

        async def renewed() -> bool:
            info = await client.describe_domain("echo")
            return bool(info.endpoints) and info.endpoints[0].lease_expires_at > first

        await eventually(renewed, timeout=5, message="heartbeats never renewed the lease")
        # Renewals keep the length granted at registration, not the gateway default.
        renewed_until = (await client.describe_domain("echo")).endpoints[0].lease_expires_at
        assert renewed_until - datetime.now(UTC) <= timedelta(seconds=0.3)
        result = await client.invoke("echo/echo", {"text": "alive"})
        assert result.output_or_raise()["text"] == "alive"


@pytest.mark.parametrize(
    ("caller", "domain", "code", "detail"),
    [
        ("thief", "victim", grpc.StatusCode.PERMISSION_DENIED, "may only register"),
        ("", "victim", grpc.StatusCode.UNAUTHENTICATED, "no caller identity"),
        ("Bad_Name", "victim", grpc.StatusCode.UNAUTHENTICATED, "invalid domain name"),
        ("BAD", "BAD", grpc.StatusCode.UNAUTHENTICATED, "invalid domain name"),
    ],
)
async def test_a_domain_may_only_register_itself(
    gateway: GatewayApp, caller: str, domain: str, code: grpc.StatusCode, detail: str
) -> None:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gw_grpc.FederationGatewayStub(channel).RegisterDomain(
                gw.RegisterDomainRequest(
                    domain=domain, endpoint=gw.Endpoint(address="127.0.0.1:1")
                ),
                metadata=_identity(caller) if caller else (),
            )
    assert info.value.code() is code
    assert detail in (info.value.details() or "")


@pytest.mark.parametrize(
    ("request_", "detail"),
    [
        (gw.RegisterDomainRequest(domain="ok-domain"), "endpoint.address is required"),
        (
            gw.RegisterDomainRequest(domain="ok-domain", endpoint=gw.Endpoint(address="nope")),
            "expected host:port",
        ),
        (
            gw.RegisterDomainRequest(
                domain="ok-domain",
                endpoint=gw.Endpoint(address="127.0.0.1:1"),
                capabilities=[pb.Capability(name="x", version="1")],
            ),
            "invalid capability name",
        ),
        (
            gw.RegisterDomainRequest(
                domain="ok-domain",
                endpoint=gw.Endpoint(address="127.0.0.1:1"),
                capabilities=[
                    pb.Capability(name="dup", version="1"),
                    pb.Capability(name="dup", version="1"),
                ],
            ),
            "declared twice",
        ),
        (
            gw.RegisterDomainRequest(
                domain="ok-domain",
                endpoint=gw.Endpoint(address="127.0.0.1:1"),
                capabilities=[
                    pb.Capability(name="bad", version="1", input_schema_json='{"type": 5}')
                ],
            ),
            "not a valid JSON Schema",
        ),
    ],
)
async def test_bad_registrations_are_invalid_argument(
    gateway: GatewayApp, request_: gw.RegisterDomainRequest, detail: str
) -> None:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gw_grpc.FederationGatewayStub(channel).RegisterDomain(
                request_, metadata=_identity("ok-domain")
            )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert detail in (info.value.details() or "")


async def test_describe_unknown_domain_is_not_found(client: GatewayClient) -> None:
    with pytest.raises(NotFound, match="not registered"):
        await client.describe_domain("nobody")


async def test_health_and_reflection(gateway: GatewayApp) -> None:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "federation.v1.FederationGateway"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        services = [s.name async for r in stream for s in r.list_services_response.service]
    assert "federation.v1.FederationGateway" in services
    assert "grpc.health.v1.Health" in services
