"""kill -9 the gateway while it writes context: no version without its audit records.

The gateway runs as a process (SQLite, synchronous=FULL, the default policies);
callers put context items through it from many concurrent tasks and keep every
version they saw answered. The gateway is killed with SIGKILL mid-load and started
again on the same state folder. Then every answered version must be stored, every
stored version must have exactly one `context.written` record naming it (and the
allowed decision before it), and `fedgate audit verify` must pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from federation.v1 import context_pb2 as ctx
from federation.v1 import context_pb2_grpc as ctx_grpc
from gateway.cli import processes
from gateway.core.audit_query import AuditQuery
from gateway.identity.credentials import INSECURE_ENV
from gateway.services import metadata
from gateway.store.audit_store import SqlAuditStore
from gateway.store.context_tables import context_versions
from gateway.store.database import open_engine
from tests.e2e.test_audit_crash import start_gateway

pytestmark = pytest.mark.e2e

CALLERS = 16
TRACE = "crash-1"


async def put_until_gone(
    address: str, answered: list[tuple[str, int]], reached: tuple[int, asyncio.Event]
) -> None:
    """Each caller writes its own key again and again until the gateway stops answering."""
    channel = grpc.aio.insecure_channel(address)
    stub = ctx_grpc.ContextServiceStub(channel)

    async def caller(k: int) -> None:
        n = 0
        while True:
            n += 1
            try:
                reply = await stub.Put(
                    ctx.PutContextRequest(
                        trace_id=TRACE, key=f"case-{k}", value_json=json.dumps({"n": n})
                    ),
                    metadata=((metadata.CALLER_DOMAIN, "support"),),
                    timeout=5,
                )
            except grpc.aio.AioRpcError:
                return  # the gateway is gone
            answered.append((reply.item.key, reply.item.version))
            if len(answered) >= reached[0]:
                reached[1].set()

    try:
        await asyncio.gather(*(caller(k) for k in range(CALLERS)))
    finally:
        await channel.close()


async def test_kill_9_while_writing_context_leaves_no_unrecorded_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INSECURE_ENV, "1")
    state = tmp_path / "state"
    gateway, address = start_gateway(state, "gateway-1", env={})
    answered: list[tuple[str, int]] = []
    try:
        well_into_the_load = asyncio.Event()
        traffic = asyncio.create_task(put_until_gone(address, answered, (300, well_into_the_load)))
        await asyncio.wait_for(well_into_the_load.wait(), timeout=60)
        os.kill(gateway.process.pid, signal.SIGKILL)
        await traffic
    finally:
        processes.stop([gateway])  # already dead; closes its log
    assert len(answered) >= 300

    # A restart recovers the log (and checkpoints its tail when it stops).
    again, _ = start_gateway(state, "gateway-2", env={})
    processes.stop([again])

    engine = open_engine(f"sqlite:///{state / 'fedgate.db'}")
    try:
        with engine.connect() as conn:
            stored = {
                (key, version)
                for key, version in conn.execute(
                    sa.select(context_versions.c.key, context_versions.c.version).where(
                        context_versions.c.trace_id == TRACE
                    )
                )
            }
        store = SqlAuditStore(engine)
        records = []
        cursor = None
        while True:
            page = store.query(
                AuditQuery(trace_id=TRACE, newest_first=False, cursor=cursor, limit=1000)
            )
            records.extend(page.records)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    finally:
        engine.dispose()

    assert set(answered) <= stored, "an answered version is lost"
    written = Counter(
        (r.attribute_values()["key"], r.attribute_values()["version"])
        for r in records
        if r.event_type == "context.written" and r.outcome == "written"
    )
    assert set(written) == stored, "a version without its record, or a record without its version"
    assert set(written.values()) == {1}
    decisions = [r for r in records if r.event_type == "policy.decision"]
    assert len(decisions) == len(stored)  # each allowed write's decision committed with it

    verify = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "audit", "verify", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
