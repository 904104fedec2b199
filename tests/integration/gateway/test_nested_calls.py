"""Nested calls A -> B -> C: one trace, parent links, depth limit and cycle refusal."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from domains.sdk import Domain, GatewayClient, TaskState
from domains.sdk.testing import serve_in_process
from gateway.errors import InvalidRequest
from gateway.server import GatewayApp, build_gateway

from .conftest import echo_domain, gateway_settings, relay_domain, wait_live


async def _serve_all(stack: AsyncExitStack, gateway: GatewayApp, *domains: Domain) -> None:
    for domain in domains:
        await stack.enter_async_context(serve_in_process(domain, gateway=gateway.address))


async def test_nested_call_keeps_the_trace_and_links_the_parent(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with AsyncExitStack() as stack:
        await _serve_all(stack, gateway, relay_domain("front"), echo_domain())
        await wait_live(client, "front", "echo")
        result = await client.invoke(
            "front/relay", {"route": ["echo/echo"], "text": "deep"}, trace_id="ab" * 16
        )
    outer = result.output_or_raise()
    assert result.trace_id == "ab" * 16
    assert outer["trace_id"] == "ab" * 16
    assert outer["inner"]["trace_id"] == "ab" * 16
    assert outer["inner"]["parent_task_id"] == result.task_id == outer["task_id"]
    assert outer["inner"]["depth"] == 2
    assert outer["inner"]["text"] == "deep"


async def test_a_cycle_is_refused_with_failed_precondition(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with AsyncExitStack() as stack:
        await _serve_all(stack, gateway, relay_domain("ping"), relay_domain("pong"))
        await wait_live(client, "ping", "pong")
        result = await client.invoke("ping/relay", {"route": ["pong/relay", "ping/relay"]})
    assert result.state is TaskState.FAILED
    assert "call cycle refused: ping/relay -> pong/relay -> ping/relay" in result.message


async def test_depth_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    app = build_gateway(gateway_settings(tmp_path, max_depth=3))
    await app.start()
    try:
        async with AsyncExitStack() as stack, GatewayClient(app.address, domain="caller") as client:
            await _serve_all(stack, app, *(relay_domain(f"hop{i}") for i in range(1, 5)))
            await wait_live(client, "hop1", "hop2", "hop3", "hop4")
            within = await client.invoke("hop1/relay", {"route": ["hop2/relay", "hop3/relay"]})
            beyond = await client.invoke(
                "hop1/relay", {"route": ["hop2/relay", "hop3/relay", "hop4/relay"]}
            )
    finally:
        await app.stop(0)
    assert within.output_or_raise()["inner"]["inner"]["depth"] == 3
    assert beyond.state is TaskState.FAILED
    assert "call depth 4 exceeds the limit of 3" in beyond.message


async def test_parent_task_of_another_domain_is_refused(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    domain = echo_domain()
    async with serve_in_process(domain, gateway=gateway.address):
        await wait_live(client, "echo")
        stream = client.invoke_stream("echo/wait", {"text": "x"})
        submitted = await anext(stream)
        try:
            # `caller` claims to act for echo's running task: refused.
            with pytest.raises(InvalidRequest, match="not in the caller's domain"):
                await client.invoke("echo/echo", {"text": "x"}, parent_task_id=submitted.task_id)
        finally:
            await stream.aclose()
