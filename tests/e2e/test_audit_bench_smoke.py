"""`python -m bench.audit` (part of `make bench`) keeps working: a quick run writes its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_quick_audit_bench_runs_and_writes_results(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.audit", "--quick", "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "audit trail" in done.stdout
    result = json.loads((tmp_path / "audit-latest.json").read_text())
    assert result["ingest_sqlite"]["records_per_s"] > 0
    assert result["ingest_postgres"]["records_per_s"] > 0
    assert result["verify_sqlite"]["ok"] is True
    assert result["handoff_sqlite"]["p50_ms"] > 0
    assert len(result["queries_sqlite"]["pages"]) >= 8
    assert result["direct_sqlite"]["lone_p50_ms"] > 0
    assert result["direct_sqlite"]["batch_per_s"] > 0
    assert "bare sqlite3" in done.stdout
