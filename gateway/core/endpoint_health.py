"""Which endpoints are healthy: passive ejection after failures, return after a good probe.

Passive: an endpoint that fails `eject_after` calls in a row is ejected from routing.
Active: the gateway probes endpoints with `grpc.health.v1`; a failed probe ejects, a
successful probe brings an ejected endpoint back. Lease expiry is separate (the registry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EjectionPolicy:
    """When an endpoint leaves routing for failing."""

    eject_after: int = 3
    """Consecutive failed calls (or one failed probe) that eject an endpoint."""


class EndpointHealth:
    """Consecutive failures and ejections per endpoint address."""

    def __init__(self, policy: EjectionPolicy) -> None:
        self._policy = policy
        self._failures: dict[str, int] = {}
        self._ejected: set[str] = set()

    def healthy(self, address: str) -> bool:
        """False while the endpoint is ejected."""
        return address not in self._ejected

    def ejected(self) -> frozenset[str]:
        """Every ejected address."""
        return frozenset(self._ejected)

    def record_call(self, address: str, success: bool) -> None:
        """Counts a routed call's outcome; ejects after too many failures in a row."""
        if success:
            self._failures.pop(address, None)
            return
        count = self._failures.get(address, 0) + 1
        self._failures[address] = count
        if count >= self._policy.eject_after and address not in self._ejected:
            log.warning("ejecting %s after %d failed calls in a row", address, count)
            self._ejected.add(address)

    def record_probe(self, address: str, serving: bool) -> None:
        """A health probe's verdict: SERVING brings an endpoint back, anything else ejects."""
        if serving:
            if address in self._ejected:
                log.info("endpoint %s answers SERVING again: back in routing", address)
            self._ejected.discard(address)
            self._failures.pop(address, None)
        elif address not in self._ejected:
            log.warning("ejecting %s: health probe failed", address)
            self._ejected.add(address)

    def forget(self, address: str) -> None:
        """Drops what is known of an endpoint that left routing."""
        self._failures.pop(address, None)
        self._ejected.discard(address)
