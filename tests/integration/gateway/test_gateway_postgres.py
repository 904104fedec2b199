"""The gateway on PostgreSQL: registry shared by two gateway instances (replicas)."""

from __future__ import annotations

from pathlib import Path

import pytest

from domains.sdk import GatewayClient
from domains.sdk.testing import eventually, serve_in_process
from gateway.server import build_gateway

from .conftest import echo_domain, gateway_settings, wait_live

pytestmark = pytest.mark.postgres


async def test_two_replicas_share_one_registry(tmp_path: Path, postgres_url: str) -> None:
    first = build_gateway(gateway_settings(tmp_path / "a", database_url=postgres_url))
    second = build_gateway(gateway_settings(tmp_path / "b", database_url=postgres_url))
    await first.start()
    await second.start()
    try:
        async with (
            serve_in_process(echo_domain(), gateway=first.address),
            GatewayClient(first.address, domain="caller") as via_first,
            GatewayClient(second.address, domain="caller") as via_second,
        ):
            await wait_live(via_first, "echo")
            # The second replica learns of the registration on its next refresh.
            await wait_live(via_second, "echo")
            result = await via_second.invoke("echo/echo", {"text": "pg"})
            assert result.output_or_raise()["text"] == "pg"
        # Deregistration on the first replica reaches the second one too.
        async with GatewayClient(second.address, domain="caller") as client:

            async def gone() -> bool:
                return [d.name for d in await client.list_domains()] == []

            await eventually(gone, timeout=10)
    finally:
        await first.stop(0)
        await second.stop(0)
