"""GatewayClient used standalone against the fake gateway."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from domains.sdk import GatewayClient, TaskState
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.core.models import CapabilitySpec, ContextRef
from gateway.errors import DomainUnavailable, InvalidRequest, NotFound, PolicyDenied
from gateway.services import convert, metadata
from gateway.services.status_map import InternalError
from tests.integration.sdk.conftest import RunningFake
from tests.integration.sdk.sample_domain import ScoreRequest


async def test_invoke_returns_the_outcome(gateway: RunningFake) -> None:
    async with GatewayClient(gateway.address, domain="finance", agent="agent/payer") as client:
        result = await client.invoke(
            "risk/score",
            ScoreRequest(customer="acme", amount=3),
            context_refs=[ContextRef("invoice", 2)],
            timeout=5,
        )

    assert result.state is TaskState.COMPLETED
    assert result.output == {"echo": {"customer": "acme", "amount": 3.0}}
    assert result.output_or_raise() == result.output
    (seen,) = gateway.fake.invocations
    assert seen.request.agent == "agent/payer"
    assert seen.metadata[metadata.CALLER_AGENT] == "agent/payer"
    assert seen.metadata[metadata.CALLER_DOMAIN] == "finance"
    assert (seen.request.context_refs[0].key, seen.request.context_refs[0].version) == (
        "invoice",
        2,
    )
    # A root call sends no trace, parent or call path: the gateway starts them.
    assert metadata.TRACE_ID not in seen.metadata
    assert metadata.PARENT_TASK_ID not in seen.metadata
    assert metadata.CALL_PATH not in seen.metadata


async def test_invoke_stream_yields_events_in_order(gateway: RunningFake) -> None:
    async with GatewayClient(gateway.address, domain="finance") as client:
        events = [e async for e in client.invoke_stream("risk/score", {"amount": 1})]

    assert [(e.sequence, e.state, e.final) for e in events] == [
        (1, TaskState.WORKING, False),
        (2, TaskState.COMPLETED, True),
    ]
    assert events[-1].output == {"echo": {"amount": 1}}


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, PolicyDenied),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidRequest),
        (grpc.StatusCode.INTERNAL, InternalError),
    ],
)
async def test_statuses_become_the_gateway_exception_tree(
    gateway: RunningFake, code: grpc.StatusCode, error: type[Exception]
) -> None:
    gateway.fake.invoke_status = code
    async with GatewayClient(gateway.address, domain="finance") as client:
        with pytest.raises(error, match="refused by the fake"):
            await client.invoke("risk/score", {})
        with pytest.raises(error, match="refused by the fake"):
            _ = [e async for e in client.invoke_stream("risk/score", {})]


async def test_invalid_targets_are_refused_before_calling(gateway: RunningFake) -> None:
    async with GatewayClient(gateway.address, domain="finance") as client:
        for target in ("risk", "Risk/score", "risk/"):
            with pytest.raises(InvalidRequest):
                await client.invoke(target, {})
        with pytest.raises(InvalidRequest, match="agent"):
            await client.invoke("risk/score", {}, agent="payer")
    assert gateway.fake.invocations == []


async def test_registry_calls(gateway: RunningFake) -> None:
    spec = CapabilitySpec(name="score", version="1.0.0", input_schema={"type": "object"})
    async with GatewayClient(gateway.address, domain="risk") as client:
        lease = await client.register(
            owner="risk-team",
            endpoint="127.0.0.1:9",
            catalog=[spec],
            lease_ttl=timedelta(seconds=3),
        )
        assert lease.lease_id == "lease-0"
        assert lease.heartbeat_interval == timedelta(seconds=0.05)
        assert await client.heartbeat(lease.lease_id) >= lease.expires_at

        (listed,) = await client.list_domains()
        described = await client.describe_domain("risk")
        assert (
            (listed.name, listed.owner)
            == (described.name, described.owner)
            == ("risk", "risk-team")
        )
        assert described.capabilities == (spec,)
        assert described.endpoints[0].address == "127.0.0.1:9"

        assert await client.deregister(lease.lease_id) == 1
        with pytest.raises(NotFound):
            await client.heartbeat(lease.lease_id)
        with pytest.raises(NotFound):
            await client.describe_domain("risk")


async def test_unreachable_gateway_is_domain_unavailable() -> None:
    async with GatewayClient("127.0.0.1:1", domain="finance") as client:
        with pytest.raises(DomainUnavailable):
            await client.list_domains(timeout=5)


async def test_channel_identity_wins_over_call_metadata(gateway: RunningFake) -> None:
    # A caller cannot claim another domain by setting the metadata itself.
    async with GatewayClient(gateway.address, domain="finance") as client:
        stub: gw_grpc.FederationGatewayAsyncStub = client.stub
        await stub.Invoke(
            gw.InvokeRequest(input=convert.json_payload({})),
            metadata=((metadata.CALLER_DOMAIN, "treasury"),),
            timeout=5,
        )

    assert gateway.fake.invocations[0].metadata[metadata.CALLER_DOMAIN] == "finance"
