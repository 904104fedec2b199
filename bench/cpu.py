"""CPU time from /proc: per process (`/proc/<pid>/stat` utime + stime, all threads) and
machine-wide (`/proc/stat`), so the bench can tell how busy other processes kept the box."""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OTHERS = "others"
"""Key of the CPU used by processes outside the benchmark (machine busy time minus ours)."""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far (resolution 1/CLK_TCK)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent not idle since boot (summed over CPUs)."""
    with open("/proc/stat", "rb") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds used by named processes, and by everything else, between start and stop."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._before: dict[str, float] = {}
        self._busy_before = 0.0

    def start(self) -> None:
        """Records every process's CPU time now."""
        self._before = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        self._busy_before = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        """CPU seconds each process used since `start`, plus `others` for the rest."""
        busy = machine_busy_seconds() - self._busy_before
        used = {name: cpu_seconds(pid) - self._before[name] for name, pid in self._pids.items()}
        used[OTHERS] = max(0.0, busy - sum(used.values()))
        return used
