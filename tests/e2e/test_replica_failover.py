"""Fault test with real processes: SIGKILL one replica of two under steady load.

Risk (idempotent `score`) and finance (non-idempotent `issue-refund`) each run two
replicas that journal every task they start. Mid-load one replica of each is killed.
Expected: no idempotent call fails (the gateway retries it on the survivor); a
non-idempotent call either completes or fails with a clear status, and no
non-idempotent task ever runs twice (its task id appears once across both journals).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from domains.sdk import GatewayClient, TaskState
from gateway.cli import processes
from gateway.errors import GatewayError
from gateway.identity.credentials import Credentials

from .conftest import Federation

pytestmark = pytest.mark.e2e

ROUNDS = 60
KILL_AT = 20


def _live_endpoints(federation: Federation, name: str) -> int:
    domain = federation.live_domains().get(name)
    return 0 if domain is None else sum(e["live"] for e in domain["endpoints"])


def _journal(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []


async def test_killing_a_replica_under_load(federation: Federation, tmp_path: Path) -> None:
    journals = {
        name: [tmp_path / f"{name}-{i}.log" for i in range(2)] for name in ("risk", "finance")
    }
    replicas = {
        name: [
            federation.start_domain(name, lease_ttl=2.0, extra=("--journal", str(path)))
            for path in paths
        ]
        for name, paths in journals.items()
    }
    federation.start_domain("support", lease_ttl=2.0)
    for name in ("risk", "finance"):
        processes.wait_for(
            federation.gateway,
            lambda name=name: _live_endpoints(federation, name) == 2,
            f"two live {name} replicas",
        )
    federation.wait_live("support")

    score_failures: list[str] = []
    refunds: Counter[str] = Counter()
    credentials = Credentials.load(federation.certs, "cli")
    async with GatewayClient(federation.address, domain="cli", credentials=credentials) as client:

        async def score(i: int) -> None:
            try:
                result = await client.invoke(
                    "risk/score",
                    {"customer_id": "c-1001", "order_id": f"s-{i}", "amount": 10},
                    timeout=10,
                )
                if not result.ok:
                    score_failures.append(result.message)
            except GatewayError as exc:
                score_failures.append(exc.message)

        async def refund(i: int) -> None:
            request = {"customer_id": "c-1001", "order_id": f"o-{i}", "amount": 5, "reason": "test"}
            try:
                result = await client.invoke("support/open-refund-case", request, timeout=10)
            except GatewayError as exc:
                refunds[f"refused: {type(exc).__name__}"] += 1
                return
            if result.state is TaskState.COMPLETED:
                refunds["completed"] += 1
            else:
                assert result.message, "a failed refund must say why"
                refunds["failed with a reason"] += 1

        for i in range(ROUNDS):
            if i == KILL_AT:
                for name in ("risk", "finance"):
                    victim = replicas[name][0]
                    os.kill(victim.process.pid, signal.SIGKILL)
                    victim.process.wait()
            await asyncio.gather(score(i), refund(i))

    risk_runs = Counter(line.split()[0] for p in journals["risk"] for line in _journal(p))
    finance_runs = Counter(line.split()[0] for p in journals["finance"] for line in _journal(p))
    figures = {
        "score_calls": ROUNDS,
        "score_failed": len(score_failures),
        "risk_tasks_run_twice": sum(1 for n in risk_runs.values() if n > 1),
        "refund_calls": ROUNDS,
        "refund_outcomes": dict(refunds),
        "finance_tasks_run_twice": sum(1 for n in finance_runs.values() if n > 1),
        "finance_tasks_run": len(finance_runs),
    }
    (tmp_path / "figures.json").write_text(json.dumps(figures, indent=2))
    print("replica failover figures:", json.dumps(figures))
    assert score_failures == []
    assert sum(refunds.values()) == ROUNDS
    assert refunds["completed"] >= ROUNDS - KILL_AT  # the survivors keep serving
    assert figures["finance_tasks_run_twice"] == 0  # non-idempotent: never twice
    # Every completed refund was booked by finance exactly once.
    assert len(finance_runs) >= refunds["completed"]
