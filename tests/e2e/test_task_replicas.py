"""Two gateway processes on one PostgreSQL: the one that follows a waiting task is killed
with SIGKILL; the other adopts the task once the owner's lease ran out, re-attaches to
the domain that still runs it, and the task completes there, having run once."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from domains.sdk import GatewayClient, TaskClient, TaskState
from domains.sdk.testing import eventually
from gateway.cli import processes

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

POLICY = """\
# The test's whole policy: cli submits approval/wait, approver answers it.
p, cli, approval, *, invoke
p, approver, approval, *, respond
p, approval, approval, *, register
"""
LEASE_TTL = 1.5
"""Seconds a gateway holds the tasks it follows unless it renews the lease."""


def _gateway(name: str, url: str, tmp: Path) -> tuple[processes.Child, str]:
    ready = tmp / f"{name}.addr"
    child = processes.start(
        name,
        processes.python_module(
            "gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(tmp / name),
            "--database-url",
            url,
            "--ready-file",
            str(ready),
        ),
        tmp / "logs",
        env={
            # Plaintext with asserted identities: the test is about task ownership.
            "FEDGATE_TLS__INSECURE": "true",
            "FEDGATE_POLICY__SEED_DIR": str(tmp / "policies"),
            "FEDGATE_TASKS__LEASE_TTL": str(LEASE_TTL),
            "FEDGATE_TASKS__POLL_INTERVAL": "0.1",
        },
    )
    address = processes.wait_ready_file(child, ready, timeout=30)
    processes.wait_for(child, lambda: processes.is_serving(address), "SERVING", 30)
    return child, address


async def _state(address: str, task_id: str) -> tuple[TaskState, str]:
    async with GatewayClient(address, domain="cli", insecure=True) as client:
        record = await TaskClient(client).get(task_id)
    return record.state, record.owner


def test_a_surviving_replica_adopts_the_killed_replicas_task(
    postgres_url: str, tmp_path: Path
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "task.csv").write_text(POLICY)
    journal = tmp_path / "approval.journal"
    children: list[processes.Child] = []
    try:
        first, first_address = _gateway("first", postgres_url, tmp_path)
        children.append(first)
        second, second_address = _gateway("second", postgres_url, tmp_path)
        children.append(second)
        domain = processes.start(
            "approval",
            processes.python_module(
                "tests.e2e.approval_domain",
                "--gateway",
                first_address,
                "--insecure",
                "--journal",
                str(journal),
            ),
            tmp_path / "logs",
            env={"FEDGATE_INSECURE": "1"},
        )
        children.append(domain)
        task_id = asyncio.run(_scenario(first, first_address, second_address))
    finally:
        processes.stop(children)
    # The domain ran the handler once: the second gateway followed it, never re-ran it.
    runs = [line.split()[0] for line in journal.read_text().splitlines()]
    assert runs.count(task_id) == 1, runs


async def _scenario(first: processes.Child, first_address: str, second_address: str) -> str:
    """Submits through the first gateway, kills it, finishes through the second."""
    async with GatewayClient(first_address, domain="cli", insecure=True) as cli:

        async def registered() -> bool:
            return any(d.name == "approval" for d in await cli.list_domains())

        await eventually(registered, timeout=20, interval=0.05)
        submitted = await TaskClient(cli).submit("approval/wait", {"case": "c-1"})
    task_id = submitted.task_id

    async def waiting_on_first() -> bool:
        state, owner = await _state(first_address, task_id)
        return state is TaskState.INPUT_REQUIRED and owner != ""

    await eventually(waiting_on_first, timeout=20, interval=0.05)
    _, first_owner = await _state(first_address, task_id)

    os.kill(first.process.pid, signal.SIGKILL)
    await asyncio.to_thread(first.process.wait, 10)

    async def adopted_by_second() -> bool:
        state, owner = await _state(second_address, task_id)
        return state is TaskState.INPUT_REQUIRED and owner not in ("", first_owner)

    # Adoption waits for the dead owner's lease (LEASE_TTL) to run out.
    await eventually(adopted_by_second, timeout=30, interval=0.1)

    async with GatewayClient(second_address, domain="approver", insecure=True) as approver:
        await TaskClient(approver).respond(task_id, {"approved": True})
    async with GatewayClient(second_address, domain="cli", insecure=True) as cli:
        tasks = TaskClient(cli)

        async def ended() -> bool:
            return (await tasks.get(task_id)).done

        await eventually(ended, timeout=30, interval=0.1)
        record = await tasks.get(task_id)
    assert record.state is TaskState.COMPLETED, record
    assert record.output == {"case": "c-1", "approved": True, "approved_by": "approver"}
    return task_id
