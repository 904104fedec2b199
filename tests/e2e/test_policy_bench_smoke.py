"""`python -m bench.policy` (part of `make bench`) keeps working: a quick run writes its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_quick_policy_bench_runs_and_writes_results(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.policy", "--quick", "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "policy decisions" in done.stdout
    result = json.loads((tmp_path / "policy-latest.json").read_text())
    assert [s["lines"] for s in result["sizes"]] == [1_000, 10_000]
    for size in result["sizes"]:
        assert size["uncached"]["p50_us"] > 0
        assert size["cached"]["p50_us"] > 0
    for run in result["reload"]:
        assert run["decisions_without_policy"] == 0
        assert run["new_version_live"] is True
        assert run["decisions_during_reload"] > 0
