"""DomainServer keeps its endpoint registered with the gateway: register, heartbeat,
re-register when the lease is gone, ride out outages, deregister on stop."""

from __future__ import annotations

import json

from domains.sdk import DomainServer
from domains.sdk.testing import eventually, execute, serve_in_process
from gateway.services import metadata
from tests.integration.sdk.conftest import RunningFake
from tests.integration.sdk.sample_domain import ScoreRequest, ScoreResult, build_domain


async def test_registration_carries_endpoint_catalog_and_identity(gateway: RunningFake) -> None:
    fake = gateway.fake
    async with serve_in_process(build_domain("risk"), gateway=gateway.address, lease_ttl=7):
        await eventually(lambda: fake.registrations)
        seen = fake.registrations[0]
        server_port = seen.request.endpoint.address.rpartition(":")[2]

        assert seen.request.domain == "risk"
        assert seen.request.owner == "risk-team"
        assert seen.request.lease_ttl.seconds == 7
        assert seen.metadata[metadata.CALLER_DOMAIN] == "risk"
        catalog = {c.name: c for c in seen.request.capabilities}
        score = catalog["score"]
        assert json.loads(score.input_schema_json) == ScoreRequest.model_json_schema()
        assert json.loads(score.output_schema_json) == ScoreResult.model_json_schema(
            mode="serialization"
        )
        assert score.idempotent
        assert score.default_timeout.seconds == 5
        assert len(catalog) == 7
    assert server_port != "0"


async def test_endpoint_address_is_the_bound_port(gateway: RunningFake) -> None:
    async with serve_in_process(build_domain("risk"), gateway=gateway.address) as server:
        await eventually(lambda: gateway.fake.registrations)

        assert server.port > 0
        assert server.address == f"127.0.0.1:{server.port}"
        assert gateway.fake.registrations[0].request.endpoint.address == server.address
        assert server.lease_keeper is not None
        lease = await server.lease_keeper.wait_registered()
        assert lease.lease_id == gateway.fake.lease_ids[0]


async def test_heartbeats_renew_the_lease_at_the_gateway_interval(gateway: RunningFake) -> None:
    fake = gateway.fake
    async with serve_in_process(build_domain("risk"), gateway=gateway.address) as server:
        keeper = server.lease_keeper
        assert keeper is not None
        # The fake records a heartbeat before answering it; the keeper counts the answer.
        await eventually(lambda: len(fake.heartbeats) >= 3 and keeper.heartbeats >= 3)
    for beat in fake.heartbeats:
        assert beat.request.domain == "risk"
        assert beat.request.lease_id == fake.lease_ids[0]
        assert beat.metadata[metadata.CALLER_DOMAIN] == "risk"
    assert len(fake.registrations) == 1


async def test_lost_lease_triggers_registration_again(gateway: RunningFake) -> None:
    fake = gateway.fake
    async with serve_in_process(build_domain("risk"), gateway=gateway.address) as server:
        await eventually(lambda: fake.heartbeats)

        fake.forget_leases()  # the next heartbeat answers NOT_FOUND

        await eventually(lambda: len(fake.registrations) == 2)
        assert server.lease_keeper is not None
        await eventually(lambda: server.lease_keeper is not None and server.lease_keeper.lease)
        assert server.lease_keeper.registrations == 2
        first, second = fake.lease_ids
        assert first != second
        heartbeats_before = len(fake.heartbeats)
        await eventually(lambda: len(fake.heartbeats) > heartbeats_before)
        assert fake.heartbeats[-1].request.lease_id == second


async def test_unavailable_gateway_is_retried_with_backoff(gateway: RunningFake) -> None:
    fake = gateway.fake
    fake.fail_registers = 3
    fake.fail_heartbeats = 2
    async with serve_in_process(build_domain("risk"), gateway=gateway.address):
        await eventually(lambda: len(fake.heartbeats) >= 2)

        assert fake.register_attempts == 4
        assert len(fake.registrations) == 1  # transient heartbeat failures keep the lease
        assert {h.request.lease_id for h in fake.heartbeats} == {fake.lease_ids[0]}


async def test_domain_serves_while_the_gateway_is_unreachable() -> None:
    # Nothing listens on port 1: registration keeps failing in the background.
    async with serve_in_process(build_domain("risk"), gateway="127.0.0.1:1") as server:
        events = await execute(server.address, "score", {"customer": "a", "amount": 1})
        assert events[-1].output == {"customer": "a", "score": 0.001}
        assert server.lease_keeper is not None
        assert server.lease_keeper.lease is None


async def test_graceful_stop_deregisters_its_own_lease(gateway: RunningFake) -> None:
    fake = gateway.fake
    server = DomainServer(build_domain("risk"), gateway=gateway.address)
    await server.start()
    assert server.lease_keeper is not None
    await server.lease_keeper.wait_registered()

    await server.stop(grace=1.0)

    (dereg,) = fake.deregistrations
    assert dereg.request.domain == "risk"
    assert dereg.request.lease_id == fake.lease_ids[0]
    assert dereg.metadata[metadata.CALLER_DOMAIN] == "risk"
    assert fake.leases == {}
    heartbeats = len(fake.heartbeats)
    await server.stop()  # idempotent
    assert len(fake.heartbeats) == heartbeats


async def test_server_without_gateway_never_registers(gateway: RunningFake) -> None:
    async with serve_in_process(build_domain("risk")) as server:
        assert server.lease_keeper is None
        assert server.gateway is None
    assert gateway.fake.register_attempts == 0
