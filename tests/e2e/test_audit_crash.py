"""kill -9 the gateway while it serves load: no answered call loses its audit records.

The gateway runs as a process (SQLite, synchronous=FULL); callers invoke a domain
through it from many concurrent tasks and keep the audit receipts of every call
they saw answered. The gateway is killed with SIGKILL mid-load, started again on
the same state folder, serves more calls, and stops. Then every receipt must name
a stored record with the same leaf hash, and `fedgate audit verify` must pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from domains.sdk import GatewayClient
from domains.sdk.testing import serve_in_process
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.cli import processes
from gateway.identity.credentials import INSECURE_ENV
from gateway.services import metadata
from gateway.store.audit_store import SqlAuditStore
from gateway.store.database import open_engine
from tests.integration.gateway.conftest import ALLOW_ALL, echo_domain, wait_live

pytestmark = pytest.mark.e2e

CALLERS = 24


def start_gateway(
    state: Path, name: str, env: dict[str, str] | None = None
) -> tuple[processes.Child, str]:
    """A gateway process on `state` (insecure, port 0); `env` None: the allow-all policy."""
    ready = state / f"{name}.addr"
    ready.unlink(missing_ok=True)
    child = processes.start(
        name,
        processes.python_module(
            "gateway",
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(state),
            "--ready-file",
            str(ready),
            "--log-level",
            "WARNING",
        ),
        state / "logs",
        env=(
            {"FEDGATE_POLICY__SEED_DIR": str(ALLOW_ALL), "FEDGATE_LEASE__REAPER_INTERVAL": "0.1"}
            if env is None
            else env
        ),
    )
    return child, processes.wait_ready_file(child, ready)


async def load(
    address: str,
    answered: list[tuple[int, bytes]],
    stop_after: int = 0,
    reached: tuple[int, asyncio.Event] | None = None,
) -> int:
    """Invokes echo/echo from concurrent callers until the gateway stops answering.

    Stops after `stop_after` calls when given; sets the event of `reached` once
    that many receipts came back.
    """
    channel = grpc.aio.insecure_channel(address)
    stub = gw_grpc.FederationGatewayStub(channel)
    calls = 0

    async def caller(k: int) -> None:
        nonlocal calls
        while True:
            call = stub.Invoke(
                gw.InvokeRequest(
                    target=pb.CapabilityRef(domain="echo", name="echo"),
                    input=pb.Payload(data=b'{"text": "x"}', content_type="application/json"),
                ),
                metadata=((metadata.CALLER_DOMAIN, f"caller{k}"),),
                timeout=5,
            )
            try:
                await call
                trailing = await call.trailing_metadata()
            except grpc.aio.AioRpcError:
                return  # the gateway is gone
            calls += 1
            answered.extend(
                metadata.decode_receipt(v) for k2, v in trailing if k2 == metadata.AUDIT_RECEIPT
            )
            if reached is not None and len(answered) >= reached[0]:
                reached[1].set()
            if stop_after and calls >= stop_after:
                return

    try:
        await asyncio.gather(*(caller(k) for k in range(CALLERS)))
    finally:
        await channel.close()
    return calls


async def test_kill_9_under_load_keeps_every_answered_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INSECURE_ENV, "1")
    state = tmp_path / "state"
    gateway, address = start_gateway(state, "gateway-1")
    answered: list[tuple[int, bytes]] = []
    try:
        async with serve_in_process(echo_domain(), gateway=address, lease_ttl=30):
            async with GatewayClient(address, domain="caller", insecure=True) as client:
                await wait_live(client, "echo")
            well_into_the_load = asyncio.Event()
            traffic = asyncio.create_task(
                load(address, answered, reached=(600, well_into_the_load))
            )
            await asyncio.wait_for(well_into_the_load.wait(), timeout=60)
            os.kill(gateway.process.pid, signal.SIGKILL)
            calls = await traffic
    finally:
        processes.stop([gateway])  # already dead; closes its log
    assert calls > 250
    assert len(answered) == 2 * calls  # task.requested and task.finished per answered call

    # Restart on the same state: it recovers, records more, stops cleanly.
    again, address = start_gateway(state, "gateway-2")
    try:
        async with serve_in_process(echo_domain(), gateway=address, lease_ttl=30):
            async with GatewayClient(address, domain="caller", insecure=True) as client:
                await wait_live(client, "echo")
            later: list[tuple[int, bytes]] = []
            await load(address, later, stop_after=20)
    finally:
        processes.stop([again])
    assert len(later) >= 2 * 20

    engine = open_engine(f"sqlite:///{state / 'fedgate.db'}")
    try:
        store = SqlAuditStore(engine)
        head = store.head()
        leaves = store.leaf_hashes(head.size)
    finally:
        engine.dispose()
    for seq, leaf in answered + later:
        assert leaves[seq] == leaf, f"record {seq} of an answered call is lost or changed"
    assert max(seq for seq, _ in later) > max(seq for seq, _ in answered)
    verify = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "gateway",
            "audit",
            "verify",
            "--state-dir",
            str(state),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"]
    assert report["records"] == head.size
    assert report["unsigned_records"] == 0  # the clean stop checkpointed the tail
