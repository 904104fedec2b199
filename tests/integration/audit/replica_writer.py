"""A gateway replica's audit writer as its own process (for the multi-writer test).

    python -m tests.integration.audit.replica_writer URL KEY_FILE COUNT RECEIPTS_FILE

Writes COUNT events through a `DurableAuditSink` on URL from 16 concurrent callers,
signing checkpoints with its own key, and writes the receipts it got as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from gateway.audit.keys import load_or_create_signer
from gateway.audit.writer import DurableAuditSink
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_log import Checkpointer
from gateway.store.audit_store import SqlAuditStore
from gateway.store.database import open_engine

ORIGIN = "fedgate.test/audit"


async def write(url: str, key: Path, count: int) -> list[dict[str, object]]:
    engine = open_engine(url)
    signer = load_or_create_signer(key, ORIGIN)
    sink = DurableAuditSink(
        SqlAuditStore(engine),
        checkpointer=Checkpointer(ORIGIN, signer, every_records=100, every_seconds=0.2),
        max_batch=50,
    )
    receipts: list[dict[str, object]] = []

    async def caller(k: int) -> None:
        for i in range(k, count, 16):
            event = AuditEvent(
                type=EventType.TASK_REQUESTED,
                actor=f"replica-{os.getpid()}",
                target_domain="risk",
                attributes={"i": i},
            )
            [receipt] = await sink.record([event])
            receipts.append({"seq": receipt.seq, "leaf": receipt.leaf_hash.hex()})

    await asyncio.gather(*(caller(k) for k in range(16)))
    sink.close()
    engine.dispose()
    return receipts


if __name__ == "__main__":
    url, key, count, out = sys.argv[1:5]
    written = asyncio.run(write(url, Path(key), int(count)))
    Path(out).write_text("".join(json.dumps(r) + "\n" for r in written))
