"""Lease policy: how long an endpoint may stay in routing without a heartbeat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    """Bounds and defaults for endpoint leases, in seconds."""

    default_ttl: float = 15.0
    min_ttl: float = 1.0
    max_ttl: float = 300.0

    def grant(self, requested: float | None) -> timedelta:
        """The lease granted for a requested length (None or 0: the default), clamped."""
        ttl = requested if requested else self.default_ttl
        return timedelta(seconds=min(max(ttl, self.min_ttl), self.max_ttl))

    @staticmethod
    def heartbeat_interval(ttl: timedelta) -> timedelta:
        """How often a holder should renew: a third of the lease, so two beats may be lost."""
        return ttl / 3
