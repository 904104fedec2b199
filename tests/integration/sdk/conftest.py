"""Fixtures for the SDK integration tests: a fake gateway and a served sample domain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from domains.sdk import DomainServer
from domains.sdk.testing import serve_in_process
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.identity.credentials import INSECURE_ENV
from tests.integration.sdk.fake_gateway import FakeGatewayRegistry
from tests.integration.sdk.sample_domain import Probe, build_domain


class RunningFake:
    """A FakeGatewayRegistry served on a loopback port."""

    def __init__(self, fake: FakeGatewayRegistry, address: str) -> None:
        self.fake = fake
        self.address = address


@pytest.fixture(autouse=True)
def _insecure_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """SDK clients and domain servers here default to insecure mode (a test-only choice).

    Tests that exercise mTLS pass credentials explicitly, which wins over this.
    """
    monkeypatch.setenv(INSECURE_ENV, "1")


@pytest.fixture
async def gateway() -> AsyncIterator[RunningFake]:
    """The fake gateway, served on a free loopback port."""
    fake = FakeGatewayRegistry()
    server = grpc.aio.server()
    gw_grpc.add_FederationGatewayServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield RunningFake(fake, f"127.0.0.1:{port}")
    finally:
        await server.stop(0)


@pytest.fixture
def probe() -> Probe:
    """Observes the sample domain's handlers."""
    return Probe()


@pytest.fixture
async def risk(probe: Probe) -> AsyncIterator[DomainServer]:
    """The sample `risk` domain served without a gateway."""
    async with serve_in_process(build_domain("risk", probe)) as server:
        yield server
