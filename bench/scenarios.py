"""The three ways of reaching the echo capability that the gateway-hop bench compares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from bench.targets import ExecuteTarget, InvokeTarget, Target


@dataclass(frozen=True)
class Scenario:
    """One path to the echo domain."""

    key: str
    label: str
    entry: str
    """Name of the process the load generator dials."""
    hop: str | None
    """Process between the caller and the echo domain, if any."""
    target: Callable[[grpc.aio.Channel], Target]


DIRECT = Scenario("direct", "(a) direct Execute", "echo", None, ExecuteTarget)
BARE_PROXY = Scenario("bare_proxy", "(b) bare grpc.aio proxy", "proxy", "proxy", ExecuteTarget)
GATEWAY = Scenario("gateway", "(c) gateway Invoke", "gateway", "gateway", InvokeTarget)
SCENARIOS = (DIRECT, BARE_PROXY, GATEWAY)
