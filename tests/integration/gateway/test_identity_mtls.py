"""Proven identities: the gateway with real mTLS on loopback.

Every party holds a certificate of one development CA (`gateway.identity.dev_ca`);
the caller's domain comes from its certificate, claims beyond it are refused and
recorded, and the gateway sends a task only to an endpoint that proves the domain
it was registered for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from pydantic import BaseModel

from domains.sdk import Domain, DomainServer, GatewayClient, TaskContext
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from federation.v1 import orchestrator_pb2 as orch
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.cli import processes
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_query import AuditQuery
from gateway.errors import DomainUnavailable
from gateway.identity import dev_ca
from gateway.identity.credentials import Credentials
from gateway.identity.errors import InvalidCertificate, MissingCredentials
from gateway.server import GatewayApp, build_gateway
from gateway.services import convert, metadata
from gateway.services.tls import (
    GATEWAY_SERVER_NAME_ENV,
    channel_credentials,
    server_credentials,
)
from gateway.settings import TlsSettings
from gateway.store.audit_store import SqlAuditStore

from .conftest import gateway_settings, wait_live

DOMAINS = ("whoami", "caller", "beta")


class RecordingSink:
    """Keeps every audit event in memory, slowly, like a durable store would.

    The delay shows that a refusal is recorded before the caller hears of it.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.events: list[AuditEvent] = []
        self.delay = delay

    async def record(self, events: list[AuditEvent]) -> Sequence[Any]:
        await asyncio.sleep(self.delay)
        self.events.extend(events)
        return []

    def refusals(self) -> list[AuditEvent]:
        return [e for e in self.events if e.type is EventType.IDENTITY_REFUSED]


class Nothing(BaseModel):
    pass


class WhoAmI(BaseModel):
    caller: str
    agent: str


def whoami_domain(name: str = "whoami") -> Domain:
    """`<name>/who` answers with the principal the gateway put into the task."""
    domain = Domain(name=name, owner="tests")

    @domain.capability("who", idempotent=True, timeout=5.0)
    async def who(ctx: TaskContext, request: Nothing) -> WhoAmI:
        return WhoAmI(caller=ctx.task.caller.domain, agent=ctx.task.caller.agent)

    return domain


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA with the gateway, `whoami`, `caller` and `beta`; `other/` is a second CA."""
    certs = tmp_path_factory.mktemp("certs")
    dev_ca.issue_federation(certs, DOMAINS)
    dev_ca.issue_federation(certs / "other", ("caller", "whoami"))
    return certs


def creds(pki: Path, party: str) -> Credentials:
    return Credentials.load(pki, party)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink(delay=0.05)


@pytest.fixture
async def secure_gateway(
    tmp_path: Path, pki: Path, sink: RecordingSink
) -> AsyncIterator[GatewayApp]:
    app = build_gateway(gateway_settings(tmp_path, tls=TlsSettings(certs_dir=pki)), audit=sink)
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


@pytest.fixture
async def whoami(secure_gateway: GatewayApp, pki: Path) -> AsyncIterator[DomainServer]:
    """The whoami domain over mTLS, registered with the gateway."""
    server = DomainServer(
        whoami_domain(),
        gateway=secure_gateway.address,
        credentials=creds(pki, "whoami"),
        retry_backoff=0.05,
    )
    await server.start()
    try:
        assert server.lease_keeper is not None
        await server.lease_keeper.wait_registered()
        yield server
    finally:
        await server.stop(0)


def secure_stub(address: str, credentials: Credentials) -> tuple[grpc.aio.Channel, Any]:
    channel = grpc.aio.secure_channel(address, channel_credentials(credentials))
    return channel, gw_grpc.FederationGatewayStub(channel)


async def test_the_certificate_proves_the_caller_and_its_agent(
    secure_gateway: GatewayApp, whoami: DomainServer, pki: Path, sink: RecordingSink
) -> None:
    async with GatewayClient(
        secure_gateway.address, domain="caller", credentials=creds(pki, "caller")
    ) as client:
        await wait_live(client, "whoami")
        plain = await client.invoke("whoami/who", {})
        assert plain.output == {"caller": "caller", "agent": ""}
        named = await client.invoke("whoami/who", {}, agent="agent/reconciler")
        assert named.output == {"caller": "caller", "agent": "agent/reconciler"}
    # The agent may also be named with its own domain in front.
    channel, stub = secure_stub(secure_gateway.address, creds(pki, "caller"))
    async with channel:
        response = await stub.Invoke(
            gw.InvokeRequest(
                target=pb.CapabilityRef(domain="whoami", name="who"),
                input=convert.json_payload({}),
                agent="caller/agent/auditor",
            ),
            # A matching claim is harmless.
            metadata=((metadata.CALLER_DOMAIN, "caller"),),
        )
    assert convert.payload_from_proto(response.output).json == {
        "caller": "caller",
        "agent": "agent/auditor",
    }
    assert sink.refusals() == []


@pytest.mark.parametrize("kind", ["no client certificate", "plaintext"])
async def test_a_caller_without_certificate_cannot_connect(
    secure_gateway: GatewayApp, pki: Path, kind: str
) -> None:
    if kind == "plaintext":
        channel = grpc.aio.insecure_channel(secure_gateway.address)
    else:
        ca_only = grpc.ssl_channel_credentials(root_certificates=creds(pki, "caller").ca_pem)
        channel = grpc.aio.secure_channel(secure_gateway.address, ca_only)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await gw_grpc.FederationGatewayStub(channel).ListDomains(
                gw.ListDomainsRequest(), timeout=5, metadata=((metadata.CALLER_DOMAIN, "caller"),)
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_of_another_ca_is_refused(
    secure_gateway: GatewayApp, pki: Path
) -> None:
    stranger = creds(pki / "other", "caller")
    # The stranger even trusts our CA, so only its own certificate is in question.
    trusting = Credentials(
        ca_pem=creds(pki, "caller").ca_pem,
        cert_pem=stranger.cert_pem,
        key_pem=stranger.key_pem,
        identity=stranger.identity,
    )
    channel, stub = secure_stub(secure_gateway.address, trusting)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListDomains(gw.ListDomainsRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_claiming_another_domain_is_refused_and_recorded(
    secure_gateway: GatewayApp, pki: Path, sink: RecordingSink
) -> None:
    channel, stub = secure_stub(secure_gateway.address, creds(pki, "caller"))
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListDomains(
                gw.ListDomainsRequest(), metadata=((metadata.CALLER_DOMAIN, "beta"),)
            )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "certificate proves domain 'caller'" in (refused.value.details() or "")
    (event,) = sink.refusals()
    assert event.actor == "spiffe://fedgate.local/domain/caller"
    assert (event.source_domain, event.target_domain) == ("caller", "beta")
    assert event.attributes["claimed"] == "beta"
    assert event.attributes["method"].endswith("/ListDomains")


@pytest.mark.parametrize("where", ["request", "metadata"])
async def test_an_agent_of_another_domain_is_refused_and_recorded(
    secure_gateway: GatewayApp, whoami: DomainServer, pki: Path, sink: RecordingSink, where: str
) -> None:
    request = gw.InvokeRequest(
        target=pb.CapabilityRef(domain="whoami", name="who"), input=convert.json_payload({})
    )
    md: tuple[tuple[str, str], ...] = ()
    if where == "request":
        request.agent = "beta/agent/payer"
    else:
        md = ((metadata.CALLER_AGENT, "beta/agent/payer"),)
    channel, stub = secure_stub(secure_gateway.address, creds(pki, "caller"))
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Invoke(request, metadata=md)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "may not act as agent 'beta/agent/payer'" in (refused.value.details() or "")
    (event,) = sink.refusals()
    assert (event.source_domain, event.target_domain) == ("caller", "beta")
    assert event.attributes["claimed"] == "beta/agent/payer"


async def test_the_gateways_own_certificate_is_no_caller(
    secure_gateway: GatewayApp, pki: Path, sink: RecordingSink
) -> None:
    channel, stub = secure_stub(secure_gateway.address, creds(pki, "gateway"))
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListDomains(gw.ListDomainsRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "does not name a domain" in (refused.value.details() or "")
    assert sink.refusals()[0].actor == "spiffe://fedgate.local/gateway"


async def test_a_domain_registers_changes_and_deregisters_only_itself(
    secure_gateway: GatewayApp, whoami: DomainServer, pki: Path, sink: RecordingSink
) -> None:
    channel, stub = secure_stub(secure_gateway.address, creds(pki, "caller"))
    async with channel:
        for call, request in (
            (
                stub.RegisterDomain,
                gw.RegisterDomainRequest(
                    domain="whoami", owner="x", endpoint=gw.Endpoint(address="127.0.0.1:1")
                ),
            ),
            (stub.Heartbeat, gw.HeartbeatRequest(domain="whoami", lease_id="x")),
            (stub.DeregisterDomain, gw.DeregisterDomainRequest(domain="whoami")),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(request)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "'caller' may not" in (refused.value.details() or "")
        # A claim in metadata changes nothing: the certificate decides.
        with pytest.raises(grpc.aio.AioRpcError) as claimed:
            await stub.DeregisterDomain(
                gw.DeregisterDomainRequest(domain="whoami"),
                metadata=((metadata.CALLER_DOMAIN, "whoami"),),
            )
        assert claimed.value.code() == grpc.StatusCode.UNAUTHENTICATED
        listed = await stub.ListDomains(gw.ListDomainsRequest())
    assert [d.name for d in listed.domains] == ["whoami"]
    # Each refusal was recorded before the caller heard of it.
    denials = [e for e in sink.events if e.type is EventType.POLICY_DECISION]
    assert [(e.actor, e.target_domain, e.decision, e.rule) for e in denials] == [
        ("caller", "whoami", "deny", "self-only")
    ] * 3
    assert [e.attributes["operation"] for e in denials] == [
        "register",
        "heartbeat for",
        "deregister",
    ]


@pytest.mark.parametrize(
    ("impostor_is", "why"),
    [
        ("another domain", "certificate of another identity"),
        ("another CA", "not issued by the federation CA"),
        ("plaintext", "TLS handshake failed"),
    ],
)
async def test_the_gateway_sends_tasks_only_to_an_endpoint_proving_its_domain(
    secure_gateway: GatewayApp, pki: Path, sink: RecordingSink, impostor_is: str, why: str
) -> None:
    # whoami registers an address where something else serves (a hijacked or
    # misconfigured address): beta with its own certificate, a whoami certificate
    # of another CA, or a plaintext server.
    if impostor_is == "another domain":
        impostor = DomainServer(whoami_domain("beta"), credentials=creds(pki, "beta"))
    elif impostor_is == "another CA":
        impostor = DomainServer(whoami_domain(), credentials=creds(pki / "other", "whoami"))
    else:
        impostor = DomainServer(whoami_domain(), insecure=True)
    await impostor.start()
    try:
        async with (
            GatewayClient(
                secure_gateway.address, domain="whoami", credentials=creds(pki, "whoami")
            ) as whoami_client,
            GatewayClient(
                secure_gateway.address, domain="caller", credentials=creds(pki, "caller")
            ) as client,
        ):
            await whoami_client.register(
                owner="tests", endpoint=impostor.address, catalog=whoami_domain().catalog()
            )
            with pytest.raises(DomainUnavailable, match="did not prove identity") as refused:
                await client.invoke("whoami/who", {})
    finally:
        await impostor.stop(0)
    assert "spiffe://fedgate.local/domain/whoami" in refused.value.message
    assert why in refused.value.message
    # Idempotent, so the router tried again: every attempt was refused and recorded.
    events = [e for e in sink.refusals() if e.actor == "gateway"]
    assert events
    for event in events:
        assert (event.source_domain, event.target_domain) == ("caller", "whoami")
        assert event.attributes["address"] == impostor.address
        assert event.attributes["expected"] == "spiffe://fedgate.local/domain/whoami"


async def test_an_orchestrator_runs_tasks_only_for_the_gateway(
    whoami: DomainServer, pki: Path
) -> None:
    # caller holds a valid certificate of the federation, but must go through the gateway.
    channel = grpc.aio.secure_channel(whoami.address, channel_credentials(creds(pki, "caller")))
    async with channel:
        stub = orch_grpc.DomainOrchestratorStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in stub.Execute(orch.ExecuteRequest()):
                pass
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "only the federation gateway" in (refused.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as cancel:
            await stub.Cancel(orch.CancelRequest(task_id="x"))
        assert cancel.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_gateway_does_not_start_without_its_certificate(tmp_path: Path, pki: Path) -> None:
    with pytest.raises(MissingCredentials, match=r"fedgate certs init --dir .* && fedgate certs"):
        build_gateway(gateway_settings(tmp_path, tls=TlsSettings()))
    with pytest.raises(InvalidCertificate, match="not spiffe://<trust-domain>/gateway"):
        build_gateway(
            gateway_settings(
                tmp_path,
                tls=TlsSettings(
                    cert=pki / "caller.pem", key=pki / "caller-key.pem", ca=pki / "ca.pem"
                ),
            )
        )
    with pytest.raises(InvalidCertificate, match=r"trust domain 'fedgate\.local'"):
        build_gateway(
            gateway_settings(tmp_path, tls=TlsSettings(certs_dir=pki, trust_domain="acme.test"))
        )


def test_an_sdk_client_refuses_credentials_of_another_domain(pki: Path) -> None:
    with pytest.raises(ValueError, match="not domain 'caller'"):
        GatewayClient("127.0.0.1:1", domain="caller", credentials=creds(pki, "beta"))


async def test_a_refused_identity_lands_in_the_durable_audit_trail(
    tmp_path: Path, pki: Path
) -> None:
    # The gateway's own trail (no test sink): the refusal is a tamper-evident record.
    app = build_gateway(gateway_settings(tmp_path, tls=TlsSettings(certs_dir=pki)))
    await app.start()
    try:
        channel, stub = secure_stub(app.address, creds(pki, "caller"))
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.ListDomains(
                    gw.ListDomainsRequest(), metadata=((metadata.CALLER_DOMAIN, "beta"),)
                )
        assert app.engine is not None
        page = SqlAuditStore(app.engine).query(AuditQuery(event_type="identity.refused"))
    finally:
        await app.stop(0)
    (record,) = page.records
    assert record.actor == "spiffe://fedgate.local/domain/caller"
    assert (record.source_domain, record.target_domain) == ("caller", "beta")
    assert record.attribute_values()["claimed"] == "beta"


@pytest.fixture
async def posing_gateway(pki: Path) -> AsyncIterator[str]:
    """A server on loopback with domain beta's certificate, which also names localhost."""
    server = grpc.aio.server()
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(creds(pki, "beta")))
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_no_domain_can_pose_as_the_gateway(
    secure_gateway: GatewayApp,
    posing_gateway: str,
    pki: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = creds(pki, "caller")
    assert await asyncio.to_thread(processes.is_serving, secure_gateway.address, "", caller)
    assert not await asyncio.to_thread(processes.is_serving, posing_gateway, "", caller)
    async with GatewayClient(posing_gateway, domain="caller", credentials=caller) as client:
        with pytest.raises(DomainUnavailable):
            await client.list_domains(timeout=5)
    # Only the gateway's name stops it: checking the dialled host alone would not.
    monkeypatch.setenv(GATEWAY_SERVER_NAME_ENV, "")
    assert await asyncio.to_thread(processes.is_serving, posing_gateway, "", caller)
