"""TaskContext outside a server: progress, escalation, and nested-call guards."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domains.sdk import GatewayClient, InputRequired
from domains.sdk.testing import local_context
from gateway.errors import DeadlineExceeded


async def test_report_goes_to_the_reporter() -> None:
    ctx, notes = local_context("risk", "score")

    await ctx.report("step 1")

    assert notes == ["step 1"]
    assert ctx.domain == "risk"
    assert ctx.task.call_path == ("risk/score",)
    assert ctx.task_id
    assert ctx.trace_id


def test_require_input_raises_with_the_question() -> None:
    ctx, _ = local_context()

    with pytest.raises(InputRequired) as caught:
        ctx.require_input("approve?")
    assert caught.value.question == "approve?"


def test_time_remaining() -> None:
    assert local_context()[0].time_remaining() is None
    remaining = local_context(deadline=timedelta(seconds=10))[0].time_remaining()
    assert remaining is not None
    assert 9 < remaining <= 10
    assert local_context(deadline=timedelta(seconds=-5))[0].time_remaining() == 0.0


async def test_call_without_gateway_is_a_clear_error() -> None:
    ctx, _ = local_context()

    with pytest.raises(RuntimeError, match="no gateway"):
        await ctx.call("risk/score", {})


async def test_call_after_the_deadline_fails_without_calling() -> None:
    # The client never opens a channel: the deadline check comes first.
    gateway = GatewayClient("127.0.0.1:1", domain="finance", insecure=True)
    ctx, _ = local_context(gateway=gateway, deadline=timedelta(seconds=-1))

    with pytest.raises(DeadlineExceeded):
        await ctx.call("risk/score", {})
    await gateway.close()
