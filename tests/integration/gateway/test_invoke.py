"""Invoke and InvokeStream through a real in-process gateway to SDK domains."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import grpc
import pytest

from domains.sdk import GatewayClient, TaskState
from domains.sdk.testing import eventually, serve_in_process
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.core.decision import Action, Decision
from gateway.core.models import Principal
from gateway.errors import (
    DeadlineExceeded,
    DomainUnavailable,
    InvalidRequest,
    NotFound,
    PolicyDenied,
)
from gateway.server import GatewayApp, build_gateway
from gateway.services import metadata

from .conftest import echo_domain, gateway_settings, wait_live

CALLER = ((metadata.CALLER_DOMAIN, "caller"),)


async def test_invoke_returns_the_output_with_ids(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        await wait_live(client, "echo")
        result = await client.invoke("echo/echo", {"text": "ab", "times": 2})
    assert result.state is TaskState.COMPLETED
    assert result.output is not None
    assert result.output["text"] == "abab"
    assert result.output["trace_id"] == result.trace_id
    assert result.output["depth"] == 1
    assert len(result.task_id) == 32


async def test_struct_input_is_accepted(gateway: GatewayApp) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        async with GatewayClient(gateway.address, domain="caller") as client:
            await wait_live(client, "echo")
        request = gw.InvokeRequest(target=pb.CapabilityRef(domain="echo", name="echo"))
        request.input.json.update({"text": "s", "times": 3})
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            response = await gw_grpc.FederationGatewayStub(channel).Invoke(request, metadata=CALLER)
    assert response.task.status.state == pb.TASK_STATE_COMPLETED
    assert response.task.caller.domain == "caller"
    assert response.task.target.version == "1.0.0"


async def test_stream_reports_progress_then_a_final_event(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        await wait_live(client, "echo")
        events = [e async for e in client.invoke_stream("echo/echo", {"text": "x"})]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].state is TaskState.SUBMITTED
    assert any(e.message == "echoing" for e in events)
    assert [e.final for e in events] == [False] * (len(events) - 1) + [True]
    assert events[-1].state is TaskState.COMPLETED
    assert events[-1].output is not None
    assert events[-1].output["text"] == "x"


async def test_handler_failure_is_a_failed_task_not_a_crash(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        await wait_live(client, "echo")
        failed = await client.invoke("echo/fail", {"text": "boom"})
        assert failed.state is TaskState.FAILED
        assert failed.error is not None
        assert failed.error.code == "handler_error"
        assert "cannot echo boom" in failed.error.message
        assert (await client.invoke("echo/echo", {"text": "still up"})).ok


@pytest.mark.parametrize(
    ("target", "detail"),
    [
        ("ghost/echo", "domain 'ghost' is not registered"),
        ("echo/nothing", "offers: echo@1.0.0, fail@1.0.0, wait@1.0.0"),
        ("echo/echo@9.9", "version '9.9'"),
    ],
)
async def test_unknown_targets_are_not_found(
    gateway: GatewayApp, client: GatewayClient, target: str, detail: str
) -> None:
    # Clients see the status (NOT_FOUND); the message says which name is unknown.
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        await wait_live(client, "echo")
        with pytest.raises(NotFound, match=re.escape(detail)):
            await client.invoke(target, {"text": "x"})


async def test_schema_violation_names_the_json_path(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address) as server:
        await wait_live(client, "echo")
        with pytest.raises(InvalidRequest) as info:
            await client.invoke("echo/echo", {"text": "x", "times": 99})
        assert "$.times" in info.value.message
        with pytest.raises(InvalidRequest, match="'text' is a required property"):
            await client.invoke("echo/echo", {})
    assert server.domain.calls == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("request_", "detail"),
    [
        (
            gw.InvokeRequest(
                target=pb.CapabilityRef(domain="echo", name="echo"),
                input=pb.Payload(data=b'{"text": ', content_type="application/json"),
            ),
            "input is not valid JSON",
        ),
        (
            gw.InvokeRequest(input=pb.Payload(data=b"{}", content_type="application/json")),
            "target is required",
        ),
        (
            gw.InvokeRequest(target=pb.CapabilityRef(domain="echo", name="echo")),
            "input is required",
        ),
        (
            gw.InvokeRequest(
                target=pb.CapabilityRef(domain="echo", name="echo"),
                input=pb.Payload(data=b"\x00", content_type="application/octet-stream"),
            ),
            "takes JSON input",
        ),
        (
            gw.InvokeRequest(
                target=pb.CapabilityRef(domain="Echo!", name="echo"),
                input=pb.Payload(data=b"{}", content_type="application/json"),
            ),
            "invalid domain name",
        ),
        (
            gw.InvokeRequest(
                target=pb.CapabilityRef(domain="echo", name="echo"),
                input=pb.Payload(data=b'{"text": "x"}', content_type="application/json"),
                agent="not-an-agent",
            ),
            "invalid agent name",
        ),
    ],
)
async def test_malformed_requests_are_invalid_argument(
    gateway: GatewayApp, request_: gw.InvokeRequest, detail: str
) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        async with GatewayClient(gateway.address, domain="caller") as client:
            await wait_live(client, "echo")
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await gw_grpc.FederationGatewayStub(channel).Invoke(request_, metadata=CALLER)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert detail in (info.value.details() or "")


async def test_oversize_message_is_resource_exhausted_and_the_gateway_survives(
    tmp_path: Path,
) -> None:
    app = build_gateway(gateway_settings(tmp_path, max_message_bytes=64 * 1024))
    await app.start()
    try:
        async with (
            serve_in_process(echo_domain(), gateway=app.address),
            GatewayClient(app.address, domain="caller") as client,
        ):
            await wait_live(client, "echo")
            async with grpc.aio.insecure_channel(app.address) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await gw_grpc.FederationGatewayStub(channel).Invoke(
                        gw.InvokeRequest(
                            target=pb.CapabilityRef(domain="echo", name="echo"),
                            input=pb.Payload(
                                data=b'{"text": "' + b"x" * 100_000 + b'"}',
                                content_type="application/json",
                            ),
                        ),
                        metadata=CALLER,
                    )
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (await client.invoke("echo/echo", {"text": "small"})).ok
    finally:
        await app.stop(0)


async def test_deadline_is_propagated_and_exceeded(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    domain = echo_domain()
    async with serve_in_process(domain, gateway=gateway.address):
        await wait_live(client, "echo")
        with pytest.raises(DeadlineExceeded):
            await client.invoke("echo/wait", {"text": "x"}, timeout=0.3)
        # The domain's handler saw the deadline run out and was canceled.
        await eventually(domain.canceled.is_set, timeout=5)  # type: ignore[attr-defined]
        assert (await client.invoke("echo/echo", {"text": "after"})).ok


async def test_caller_cancellation_cancels_the_domain_task(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    domain = echo_domain()
    async with serve_in_process(domain, gateway=gateway.address):
        await wait_live(client, "echo")
        call = asyncio.create_task(client.invoke("echo/wait", {"text": "x"}))
        await eventually(domain.waiting.is_set, timeout=5)  # type: ignore[attr-defined]
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await eventually(domain.canceled.is_set, timeout=5)  # type: ignore[attr-defined]


async def test_domain_that_dies_mid_call_is_unavailable(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    domain = echo_domain()
    async with serve_in_process(domain, gateway=gateway.address) as server:
        await wait_live(client, "echo")
        call = asyncio.create_task(client.invoke("echo/wait", {"text": "x"}))
        await eventually(domain.waiting.is_set, timeout=5)  # type: ignore[attr-defined]
        assert server._server is not None
        await server._server.stop(None)  # the orchestrator vanishes without deregistering
        with pytest.raises(DomainUnavailable, match="went away"):
            await call
    # The gateway itself is unharmed.
    assert await client.list_domains(include_offline=True)


async def test_calls_are_spread_over_live_replicas(
    gateway: GatewayApp, client: GatewayClient
) -> None:
    first, second = echo_domain(served_by="a"), echo_domain(served_by="b")
    async with (
        serve_in_process(first, gateway=gateway.address),
        serve_in_process(second, gateway=gateway.address),
    ):
        await wait_live(client, "echo", endpoints=2)
        results = await asyncio.gather(
            *(client.invoke("echo/echo", {"text": str(i)}) for i in range(40))
        )
    served = Counter(r.output_or_raise()["served_by"] for r in results)
    assert set(served) == {"a", "b"}
    assert min(served.values()) >= 10


class _NoInvokeOf:
    """A real PolicyDecider refusing `invoke` on one domain (everything else allowed)."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def decide(self, principal: Principal, domain: str, obj: str, action: Action) -> Decision:
        if domain == self.domain and action is Action.INVOKE:
            return Decision(False, f"{principal} may not invoke {domain}/{obj}", "test-deny")
        return Decision(True, "allowed", "test-allow")


async def test_a_refused_caller_learns_nothing_of_the_input_schema(tmp_path: Path) -> None:
    app = build_gateway(gateway_settings(tmp_path), policy=_NoInvokeOf("echo"))
    await app.start()
    try:
        async with (
            serve_in_process(echo_domain(), gateway=app.address),
            GatewayClient(app.address, domain="caller") as client,
        ):
            # Listings hide echo from everyone here; ask the routing view itself.
            await eventually(
                lambda: any(d.name == "echo" and d.endpoints for d in app.registry.list_domains()),
                timeout=10,
            )
            # Policy decides before validation: the answer is the refusal, not "$.times".
            with pytest.raises(PolicyDenied, match="may not invoke echo/echo"):
                await client.invoke("echo/echo", {"text": "x", "times": 99})
    finally:
        await app.stop(0)
