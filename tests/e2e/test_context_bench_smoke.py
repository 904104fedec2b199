"""`python -m bench.context` (in `make bench`) keeps working: a quick run writes its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_quick_context_bench_runs_and_writes_results(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.context", "--quick", "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "shared context vs a routed call" in done.stdout
    result = json.loads((tmp_path / "context-latest.json").read_text())
    ratios = result["ratios_to_invoke"]
    assert set(ratios) >= {"put", "get"}
    assert all(r["p50"] > 0 and r["throughput"] > 0 for r in ratios.values())
