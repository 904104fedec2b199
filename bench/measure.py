"""Runs the measured phases: warm-up, then repetitions interleaving the scenarios."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from bench import load
from bench.calibrate import calibrate
from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.scenarios import SCENARIOS, Scenario
from bench.targets import PAYLOAD, CallFailed, Target

CLIENT = "client"
"""Name of the load generator (this process) among the measured processes."""


@dataclass(frozen=True)
class Phase:
    """One measured batch of calls and the CPU each process spent on it."""

    scenario: str
    repetition: int
    run: load.Run
    cpu_s: dict[str, float]


@dataclass(frozen=True)
class Measured:
    """Every phase of a run and the machine yardstick taken before them."""

    phases: list[Phase]
    calibration: dict[str, float]


async def measure(
    config: BenchConfig,
    addresses: dict[str, str],
    pids: dict[str, int],
    progress: Callable[[str], None],
) -> Measured:
    """Warms every scenario up, then measures `config.repetitions` rounds of all of them.

    A round measures each in-flight level (1, then `config.concurrency`) for every
    scenario in turn, reading every process's CPU time around each phase.
    """
    yardstick = await calibrate()
    progress(
        f"machine yardstick: in-process grpc.aio unary round trip p50 "
        f"{yardstick['unary_p50_us']:.0f} µs, {yardstick['unary_cpu_us_per_call']:.0f} µs CPU"
    )
    meter = CpuMeter({**pids, CLIENT: os.getpid()})
    channels = {s.key: grpc.aio.insecure_channel(addresses[s.entry]) for s in SCENARIOS}
    try:
        targets = {s.key: s.target(channels[s.key]) for s in SCENARIOS}
        for scenario in SCENARIOS:
            await _warm_up(config, scenario, targets[scenario.key])
            progress(f"warmed up {scenario.label}")
        phases: list[Phase] = []
        # Scenarios alternate at each level, so a burst of outside load hits all three
        # alike and the ratios stay fair even when the absolute figures drift.
        for repetition in range(1, config.repetitions + 1):
            for concurrency in (1, *config.concurrency):
                for scenario in SCENARIOS:
                    meter.start()
                    async with asyncio.timeout(config.phase_timeout):
                        run = await load.run(targets[scenario.key], config.calls, concurrency)
                    phases.append(Phase(scenario.key, repetition, run, meter.stop()))
                    progress(
                        f"rep {repetition}/{config.repetitions} {scenario.label:<26} "
                        f"{concurrency:>3} in flight: {run.throughput:8.0f} calls/s"
                    )
        return Measured(phases, yardstick)
    finally:
        await asyncio.gather(*(c.close() for c in channels.values()))


async def _warm_up(config: BenchConfig, scenario: Scenario, target: Target) -> None:
    output = await target.output()
    if output != PAYLOAD:
        raise CallFailed(f"{scenario.label}: echo returned {output!r}, expected {PAYLOAD!r}")
    if config.warmup:
        async with asyncio.timeout(config.phase_timeout):
            await load.run(target, config.warmup, max(config.concurrency, default=1))
            await load.run(target, max(1, config.warmup // 4), 1)
