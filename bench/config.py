"""Sizes and switches of one benchmark run (set from the command line)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class BenchConfig:
    """How much to measure and where to write the results."""

    calls: int = 1000
    """Calls per measured phase (1 in flight, and each concurrency level), per repetition."""
    repetitions: int = 3
    """Measured repetitions; scenarios are interleaved within each repetition."""
    warmup: int = 300
    """Unmeasured calls per scenario before the first repetition."""
    concurrency: tuple[int, ...] = (16, 64)
    """In-flight levels of the throughput phases."""
    gateway_log_level: str = "INFO"
    """The gateway's `--log-level` (INFO is what `fedgate serve` runs with)."""
    audit_mode: str = "strict"
    """The gateway's audit mode: strict (the default: two durable commits per call) or
    relaxed (records queued, not awaited: the hop without the audit trail's fsyncs)."""
    phase_timeout: float = 120.0
    """Seconds one phase may take before the run is abandoned."""
    results_dir: Path = RESULTS_DIR
    work_dir: Path | None = None
    """Where the gateway's database and the logs go; a temporary folder if None."""
