"""Retries, circuit breakers and endpoint ejection against real gRPC endpoints."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domains.sdk import GatewayClient
from domains.sdk.testing import eventually
from gateway.errors import DomainUnavailable
from gateway.server import GatewayApp, build_gateway
from gateway.settings import ResilienceSettings

from .conftest import gateway_settings, wait_live
from .flaky_domain import FlakyDomain

RESILIENCE = ResilienceSettings(
    retry_attempts=3,
    retry_base_backoff=0.01,
    breaker_min_calls=3,
    breaker_failure_ratio=0.5,
    # Long enough that even a loaded machine makes the fail-fast call inside it (the
    # breaker would otherwise be half-open already and let a trial through).
    breaker_cooldown=1.5,
    eject_after=2,
    probe_interval=0.05,
    probe_timeout=0.5,
)


@pytest.fixture
async def resilient_gateway(tmp_path: Path) -> AsyncIterator[GatewayApp]:
    app = build_gateway(gateway_settings(tmp_path, resilience=RESILIENCE))
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


@pytest.fixture
async def unprobed_gateway(tmp_path: Path) -> AsyncIterator[GatewayApp]:
    """Active probes off: only passive ejection decides (a probe could readmit)."""
    quiet = RESILIENCE.model_copy(update={"probe_interval": 0.0})
    app = build_gateway(gateway_settings(tmp_path, resilience=quiet))
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


async def _replicas(
    gateway: GatewayApp, client: GatewayClient, *, idempotent: bool, count: int = 2
) -> list[FlakyDomain]:
    replicas = [FlakyDomain("flaky") for _ in range(count)]
    for replica in replicas:
        await replica.start(gateway.address, idempotent=idempotent)
    await wait_live(client, "flaky", endpoints=count)
    return replicas


async def test_idempotent_calls_survive_a_failing_replica(resilient_gateway: GatewayApp) -> None:
    async with GatewayClient(resilient_gateway.address, domain="caller") as client:
        sick, well = await _replicas(resilient_gateway, client, idempotent=True)
        try:
            sick.sick = True
            results = [await client.invoke("flaky/work", {}) for _ in range(30)]
        finally:
            await sick.stop()
            await well.stop()
    assert all(r.ok for r in results)
    assert {r.output_or_raise()["served_by"] for r in results} == {well.address}
    assert well.executions == 30  # every call ran exactly once
    assert sick.executions == 0


async def test_a_domain_that_keeps_its_stream_open_after_the_final_event_is_answered(
    unprobed_gateway: GatewayApp,
) -> None:
    # The gateway reads a stream to its end after the final event; one that does not
    # end is canceled after a short grace, and the final event still answers the call.
    async with GatewayClient(unprobed_gateway.address, domain="caller") as client:
        (lingering,) = await _replicas(unprobed_gateway, client, idempotent=False, count=1)
        lingering.linger = True
        try:
            started = time.monotonic()
            result = await client.invoke("flaky/work", {}, timeout=20.0)
            elapsed = time.monotonic() - started
        finally:
            await lingering.stop()
    assert result.ok
    assert result.output_or_raise()["served_by"] == lingering.address
    assert elapsed < 10.0  # the grace (0.5 s), not the 20 s deadline


async def test_non_idempotent_calls_are_never_retried(unprobed_gateway: GatewayApp) -> None:
    async with GatewayClient(unprobed_gateway.address, domain="caller") as client:
        sick, well = await _replicas(unprobed_gateway, client, idempotent=False)
        sick.sick = True
        failed = succeeded = 0
        try:
            for _ in range(20):
                try:
                    result = await client.invoke("flaky/work", {})
                except DomainUnavailable:
                    failed += 1
                else:
                    assert result.ok
                    succeeded += 1
        finally:
            await sick.stop()
            await well.stop()
    assert failed >= 1
    assert failed == sick.refusals  # each failure reached the sick replica once, no retry
    assert succeeded == well.executions  # and nothing ran twice
    # Passive ejection took the sick replica out after `eject_after` failures in a row.
    assert failed <= RESILIENCE.eject_after


async def test_breaker_opens_fails_fast_then_closes_after_a_good_trial(
    resilient_gateway: GatewayApp,
) -> None:
    async with GatewayClient(resilient_gateway.address, domain="caller") as client:
        (only,) = await _replicas(resilient_gateway, client, idempotent=False, count=1)
        try:
            only.sick = True
            for _ in range(RESILIENCE.breaker_min_calls):
                with pytest.raises(DomainUnavailable, match="is sick"):
                    await client.invoke("flaky/work", {})
            with pytest.raises(DomainUnavailable, match="circuit open"):
                await client.invoke("flaky/work", {})
            assert only.refusals == RESILIENCE.breaker_min_calls  # failing fast: not reached
            # Another caller has its own breaker and still reaches the endpoint.
            async with GatewayClient(resilient_gateway.address, domain="other") as other:
                with pytest.raises(DomainUnavailable, match="is sick"):
                    await other.invoke("flaky/work", {})
            only.sick = False

            async def recovered() -> bool:
                try:
                    return (await client.invoke("flaky/work", {})).ok
                except DomainUnavailable as exc:
                    if "circuit open" not in exc.message:
                        raise
                    return False

            await eventually(recovered, timeout=5, interval=0.05)
            assert (await client.invoke("flaky/work", {})).ok  # closed again
        finally:
            await only.stop()


async def test_failed_probe_ejects_and_a_good_probe_restores(
    resilient_gateway: GatewayApp,
) -> None:
    async with GatewayClient(resilient_gateway.address, domain="caller") as client:
        first, second = await _replicas(resilient_gateway, client, idempotent=True)
        try:
            await first.set_serving(False)

            async def only_second() -> bool:
                served = {
                    (await client.invoke("flaky/work", {})).output_or_raise()["served_by"]
                    for _ in range(6)
                }
                return served == {second.address}

            await eventually(only_second, timeout=5, interval=0.05)
            await first.set_serving(True)

            async def first_again() -> bool:
                served = {
                    (await client.invoke("flaky/work", {})).output_or_raise()["served_by"]
                    for _ in range(6)
                }
                return first.address in served

            await eventually(first_again, timeout=5, interval=0.05)
        finally:
            await first.stop()
            await second.stop()
