"""Circuit breakers per (caller domain, target endpoint): fail fast while a target is sick.

closed ──(failure ratio ≥ threshold over the window, with enough calls)──▶ open
open ──(cool-down elapsed)──▶ half-open: one trial call at a time
half-open ──success──▶ closed          half-open ──failure──▶ open (cool-down again)

One caller's bad luck with an endpoint does not trip the breaker for other callers.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class BreakerState(enum.StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and how long it stays open."""

    window: int = 20
    """How many recent outcomes the failure ratio is computed over."""
    min_calls: int = 5
    """No opening before this many outcomes are in the window."""
    failure_ratio: float = 0.5
    """Opens when failures / outcomes in the window reach this."""
    cooldown: float = 5.0
    """Seconds an open breaker waits before letting one trial call through."""


class CircuitBreaker:
    """One breaker. Not thread-safe: used from the event loop only."""

    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._outcomes: deque[bool] = deque(maxlen=policy.window)
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its cool-down reads half-open)."""
        if self._state is BreakerState.OPEN and self._cooled_down():
            return BreakerState.HALF_OPEN
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when not open)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._policy.cooldown - self._clock())

    def allow(self) -> bool:
        """True if a call may go through now; a half-open breaker admits one trial."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if not self._cooled_down():
                return False
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record(self, success: bool) -> None:
        """Records the outcome of a call that `allow` let through."""
        if self._state is BreakerState.HALF_OPEN:
            self._trial_in_flight = False
            if success:
                self._state = BreakerState.CLOSED
                self._outcomes.clear()
            else:
                self._open()
            return
        self._outcomes.append(success)
        failures = self._outcomes.count(False)
        if (
            self._state is BreakerState.CLOSED
            and len(self._outcomes) >= self._policy.min_calls
            and failures / len(self._outcomes) >= self._policy.failure_ratio
        ):
            self._open()

    def abandon(self) -> None:
        """Forgets a call `allow` let through that ended with no verdict (e.g. canceled)."""
        self._trial_in_flight = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._outcomes.clear()

    def _cooled_down(self) -> bool:
        return self._clock() >= self._opened_at + self._policy.cooldown


class BreakerBoard:
    """The breakers of one gateway, created on first use per (caller, endpoint)."""

    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, caller: str, address: str) -> CircuitBreaker:
        """The breaker for calls from `caller` to the endpoint at `address`."""
        key = (caller, address)
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = CircuitBreaker(self._policy, self._clock)
        return breaker

    def forget(self, address: str) -> None:
        """Drops the breakers of an endpoint that left routing."""
        for key in [k for k in self._breakers if k[1] == address]:
            del self._breakers[key]
