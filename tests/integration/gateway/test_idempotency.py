"""Idempotency keys through a real gateway: never twice, the first outcome, no reuse."""

from __future__ import annotations

import asyncio

import pytest

from domains.sdk import GatewayClient
from domains.sdk.testing import eventually, serve_in_process
from gateway.errors import DomainUnavailable, InvalidRequest
from gateway.server import GatewayApp

from .conftest import echo_domain, wait_live


async def test_a_retried_key_returns_the_first_outcome_without_running_again(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    domain = echo_domain()
    async with serve_in_process(domain, gateway=gateway.address):
        await wait_live(client, "echo")
        first = await client.invoke("echo/echo", {"text": "pay"}, idempotency_key="k-1")
        again = await client.invoke("echo/echo", {"text": "pay"}, idempotency_key="k-1")
        other = await client.invoke("echo/echo", {"text": "pay"}, idempotency_key="k-2")
    assert again.task_id == first.task_id
    assert again.trace_id == first.trace_id
    assert again.output == first.output
    assert other.task_id != first.task_id
    assert domain.calls == 2  # type: ignore[attr-defined]  # k-1 once, k-2 once


async def test_a_failed_task_is_replayed_as_failed(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        await wait_live(client, "echo")
        first = await client.invoke("echo/fail", {"text": "x"}, idempotency_key="f")
        again = await client.invoke("echo/fail", {"text": "x"}, idempotency_key="f")
    assert first.error is not None
    assert again.error == first.error
    assert again.task_id == first.task_id


async def test_reusing_a_key_for_another_request_is_invalid(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        await wait_live(client, "echo")
        await client.invoke("echo/echo", {"text": "a"}, idempotency_key="same")
        with pytest.raises(InvalidRequest, match="used for a different request"):
            await client.invoke("echo/echo", {"text": "b"}, idempotency_key="same")
        with pytest.raises(InvalidRequest, match="used for a different request"):
            await client.invoke("echo/fail", {"text": "a"}, idempotency_key="same")


async def test_keys_belong_to_their_caller(gateway: GatewayApp, client: GatewayClient) -> None:
    domain = echo_domain()
    async with (
        serve_in_process(domain, gateway=gateway.address),
        GatewayClient(gateway.address, domain="someone") as other,
    ):
        await wait_live(client, "echo")
        mine = await client.invoke("echo/echo", {"text": "a"}, idempotency_key="k")
        theirs = await other.invoke("echo/echo", {"text": "b"}, idempotency_key="k")
    assert mine.task_id != theirs.task_id
    assert domain.calls == 2  # type: ignore[attr-defined]


async def test_a_key_in_flight_is_refused_as_retryable(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    domain = echo_domain()
    async with serve_in_process(domain, gateway=gateway.address):
        await wait_live(client, "echo")
        running = asyncio.create_task(
            client.invoke("echo/wait", {"text": "x"}, idempotency_key="slow")
        )
        await eventually(domain.waiting.is_set, timeout=5)  # type: ignore[attr-defined]
        with pytest.raises(DomainUnavailable, match="still running"):
            await client.invoke("echo/wait", {"text": "x"}, idempotency_key="slow")
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running


async def test_a_call_refused_before_forwarding_frees_its_key(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    domain = echo_domain()
    async with serve_in_process(domain, gateway=gateway.address):
        await wait_live(client, "echo")
        with pytest.raises(InvalidRequest, match="schema"):
            await client.invoke("echo/echo", {"text": ""}, idempotency_key="fixme")
        # Nothing ran, so the corrected request may use the same key.
        fixed = await client.invoke("echo/echo", {"text": "ok"}, idempotency_key="fixme")
    assert fixed.output_or_raise()["text"] == "ok"
    assert domain.calls == 1  # type: ignore[attr-defined]
