"""Several writer processes on one PostgreSQL log keep one gap-free, verifiable order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.audit.keys import read_verifiers
from gateway.audit.verification import verify_log
from gateway.store.audit_store import SqlAuditStore
from gateway.store.database import migrate, open_engine

from .replica_writer import ORIGIN

WRITERS = 4
EACH = 400


@pytest.mark.postgres
def test_writer_processes_share_one_order(postgres_url: str, tmp_path: Path) -> None:
    engine = open_engine(postgres_url)
    migrate(engine)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.audit.replica_writer",
                postgres_url,
                str(tmp_path / f"replica-{n}.key"),
                str(EACH),
                str(tmp_path / f"receipts-{n}.jsonl"),
            ],
            cwd=Path(__file__).parents[3],
        )
        for n in range(WRITERS)
    ]
    try:
        for child in children:
            assert child.wait(timeout=120) == 0
        store = SqlAuditStore(engine)
        head = store.head()
        assert head.size == WRITERS * EACH
        receipts = [
            json.loads(line)
            for n in range(WRITERS)
            for line in (tmp_path / f"receipts-{n}.jsonl").read_text().splitlines()
        ]
        assert sorted(r["seq"] for r in receipts) == list(range(WRITERS * EACH))
        leaves = store.leaf_hashes(head.size)
        assert all(leaves[r["seq"]].hex() == r["leaf"] for r in receipts)
        keys = read_verifiers([tmp_path / f"replica-{n}.pub" for n in range(WRITERS)])
        report = verify_log(store, keys, ORIGIN).report
        assert report.ok, report.findings
        assert report.records == WRITERS * EACH
        assert report.newest_checkpoint == WRITERS * EACH  # each writer checkpoints on close
        signers = {c.signer for c in store.checkpoints()}
        assert len(signers) > 1  # the replicas took turns
    finally:
        for child in children:
            child.kill()
        engine.dispose()
