"""Rate limits on Invoke through a real gateway: RESOURCE_EXHAUSTED with a retry-after hint."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from domains.sdk import GatewayClient
from domains.sdk.testing import serve_in_process
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.errors import ResourceExhausted
from gateway.server import build_gateway
from gateway.services import convert, metadata
from gateway.settings import QuotaSettings, RateSettings

from .conftest import echo_domain, gateway_settings, wait_live


async def test_excess_calls_get_resource_exhausted_with_retry_after(tmp_path: Path) -> None:
    quotas = QuotaSettings(
        per_caller={"caller": RateSettings(per_second=0.5, burst=3)},
        per_pair={"other->echo": RateSettings(per_second=0.5, burst=1)},
    )
    app = build_gateway(gateway_settings(tmp_path, quotas=quotas))
    await app.start()
    domain = echo_domain()
    try:
        async with (
            serve_in_process(domain, gateway=app.address),
            GatewayClient(app.address, domain="caller") as client,
            GatewayClient(app.address, domain="other") as other,
        ):
            await wait_live(client, "echo")
            for _ in range(3):
                assert (await client.invoke("echo/echo", {"text": "x"})).ok
            with pytest.raises(ResourceExhausted, match=r"rate limit of caller caller exceeded"):
                await client.invoke("echo/echo", {"text": "x"})
            assert (await other.invoke("echo/echo", {"text": "x"})).ok
            with pytest.raises(ResourceExhausted, match="other -> echo"):
                await other.invoke("echo/echo", {"text": "x"})
            # The hint travels as trailing metadata too.
            async with grpc.aio.insecure_channel(app.address) as channel:
                call = gw_grpc.FederationGatewayStub(channel).Invoke(
                    gw.InvokeRequest(
                        target=pb.CapabilityRef(domain="echo", name="echo"),
                        input=convert.json_payload({"text": "x"}),
                    ),
                    metadata=((metadata.CALLER_DOMAIN, "caller"),),
                )
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call
                assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                trailing = dict(await call.trailing_metadata() or ())
                assert 0 < int(trailing[metadata.RETRY_AFTER_MS]) <= 2000
    finally:
        await app.stop(0)
    assert domain.calls == 4  # refused calls never reached the domain
