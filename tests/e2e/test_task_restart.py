"""Fault test with real processes: SIGKILL the gateway while long-running tasks run.

The example federation (risk, finance, support with a journal of every task its
handler starts) gets refund cases as long-running tasks: high-risk ones that wait
input-required for a human approver, and ordinary ones, some still in flight when
the gateway is killed with SIGKILL. The gateway restarts on the same port and
database. Expected: every stored task reaches a final state (the held ones
complete once approved through the restarted gateway), none is lost, none runs
twice (each task id appears at most once in support's journal).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domains.sdk import GatewayClient, TaskClient, TaskState
from domains.sdk.testing import eventually
from gateway.cli import processes
from gateway.errors import GatewayError
from gateway.identity.credentials import Credentials

from .conftest import Federation

pytestmark = pytest.mark.e2e

HELD = 5
"""High-risk cases that wait for a human approver across the restart."""
IN_FLIGHT = 5
"""Ordinary cases submitted just before the kill."""


def _case(i: int, *, high_risk: bool) -> dict[str, object]:
    if high_risk:  # unknown customer, large amount: rules score 90, high risk
        return {"customer_id": f"c-9{i:03d}", "order_id": f"h-{i}", "amount": 800, "reason": "lost"}
    return {"customer_id": "c-1001", "order_id": f"f-{i}", "amount": 20, "reason": "broken"}


def _restart_gateway(federation: Federation) -> None:
    ready = federation.state_dir / "gateway-2.addr"
    child = processes.start(
        "gateway-2",
        processes.python_module(
            "gateway",
            "serve",
            "--listen",
            federation.address,  # the same port: domains keep heartbeating to it
            "--state-dir",
            str(federation.state_dir),
            "--ready-file",
            str(ready),
        ),
        federation.state_dir / "logs",
        env={"FEDGATE_LEASE__MIN_TTL": "0.5", "FEDGATE_LEASE__REAPER_INTERVAL": "0.1"},
    )
    federation.children.append(child)
    federation.gateway = child
    processes.wait_ready_file(child, ready)
    cli = Credentials.load(federation.certs, "cli")
    processes.wait_for(child, lambda: processes.is_serving(federation.address, "", cli), "SERVING")


async def _wait_heartbeats(federation: Federation) -> None:
    """Waits until every domain renewed its lease with the restarted gateway.

    A domain's channel to the gateway reconnects with backoff after the restart;
    a synchronous nested call made before it did fails fast (UNAVAILABLE). Nested
    calls of long-running tasks wait for the gateway, but finance's own nested call
    to risk runs in a synchronous task, so the approvals wait for the channels.
    """
    since = datetime.now(UTC)
    observers = {"cli": ("support",), "support": ("risk", "finance")}

    async def renewed() -> bool:
        for observer, names in observers.items():
            credentials = Credentials.load(federation.certs, observer)
            async with GatewayClient(
                federation.address, domain=observer, credentials=credentials
            ) as client:
                for name in names:
                    info = await client.describe_domain(name)
                    # A renewal after the restart pushes the expiry past since + ttl - a
                    # little; the last one before the kill cannot (the restart took > 1 s).
                    if not any(
                        e.lease_expires_at > since + timedelta(seconds=4.5) for e in info.endpoints
                    ):
                        return False
        return True

    await eventually(renewed, timeout=30, interval=0.2, message="domains never renewed")


async def test_killing_the_gateway_loses_and_duplicates_no_task(
    federation: Federation, tmp_path: Path
) -> None:
    journal = tmp_path / "support.log"
    federation.start_domain("risk", lease_ttl=5.0)
    federation.start_domain("finance", lease_ttl=5.0)
    federation.start_domain("support", lease_ttl=5.0, extra=("--journal", str(journal)))
    federation.wait_live("support", "risk", "finance")
    cli = Credentials.load(federation.certs, "cli")
    approver = Credentials.load(federation.certs, "approver")
    submitted: dict[str, str] = {}  # task id -> kind
    refused_at_submit = 0

    async with GatewayClient(federation.address, domain="cli", credentials=cli) as client:
        tasks = TaskClient(client)
        for i in range(HELD):
            record = await tasks.submit("support/open-refund-case", _case(i, high_risk=True))
            submitted[record.task_id] = "held"

        async def all_held() -> bool:
            held = [t for t, k in submitted.items() if k == "held"]
            states = [(await tasks.get(t)).state for t in held]
            return all(s is TaskState.INPUT_REQUIRED for s in states)

        await eventually(all_held, timeout=30, message="held cases never asked for approval")

        async def submit_late(i: int) -> None:
            nonlocal refused_at_submit
            try:
                record = await tasks.submit("support/open-refund-case", _case(i, high_risk=False))
                submitted[record.task_id] = "in-flight"
            except GatewayError:
                refused_at_submit += 1  # the gateway died before it accepted (and stored) it

        late = [asyncio.create_task(submit_late(i)) for i in range(IN_FLIGHT)]
        await eventually(lambda: len(submitted) >= HELD + 2, timeout=10)
        os.kill(federation.gateway.process.pid, signal.SIGKILL)
        federation.gateway.process.wait()
        await asyncio.gather(*late)

    _restart_gateway(federation)
    await _wait_heartbeats(federation)

    async with (
        GatewayClient(federation.address, domain="cli", credentials=cli) as client,
        GatewayClient(federation.address, domain="approver", credentials=approver) as human,
    ):
        tasks, approvals = TaskClient(client), TaskClient(human)

        async def waiting(task_id: str) -> bool:
            return (await tasks.get(task_id)).state is TaskState.INPUT_REQUIRED

        for task_id, kind in submitted.items():
            if kind == "held":
                await eventually(lambda t=task_id: waiting(t), timeout=30)  # type: ignore[misc]
                await approvals.respond(task_id, {"approved": True})

        async def all_final() -> bool:
            return all([(await tasks.get(t)).done for t in submitted])

        await eventually(all_final, timeout=60, message="a task never reached a final state")
        records = {t: await tasks.get(t) for t in submitted}
        reattached = 0
        for task_id in submitted:
            messages = [e.message async for e in tasks.watch(task_id)]
            reattached += any("re-attached" in m for m in messages)

    runs = Counter(line.split()[0] for line in journal.read_text().splitlines())
    states = Counter(r.state.value for r in records.values())
    figures = {
        "submitted": len(submitted) + refused_at_submit,
        "accepted_and_stored": len(submitted),
        "refused_at_submit_by_the_dying_gateway": refused_at_submit,
        "final_states": dict(states),
        "reattached": reattached,
        "not_final": sum(1 for r in records.values() if not r.done),
        "duplicated_executions": sum(1 for n in runs.values() if n > 1),
        "executions_of_unknown_tasks": sum(1 for t in runs if t not in submitted),
    }
    (tmp_path / "figures.json").write_text(json.dumps(figures, indent=2))
    print("gateway restart figures:", json.dumps(figures))
    assert figures["not_final"] == 0
    assert figures["duplicated_executions"] == 0
    assert all(records[t].state is TaskState.COMPLETED for t, k in submitted.items() if k == "held")
    assert all(records[t].output["refund_id"] for t, k in submitted.items() if k == "held")  # type: ignore[index]
    assert reattached >= HELD  # the held cases were followed again, not re-run
    for record in records.values():
        if record.state is not TaskState.COMPLETED:
            assert record.message, "a task that did not complete must say why"
    # Every stored task started at most once at support; none started that was not stored.
    assert set(runs) <= set(submitted)
