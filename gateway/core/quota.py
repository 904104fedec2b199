"""Token-bucket rate limits per caller domain and per (caller, target domain) pair.

Each bucket holds up to `burst` tokens and refills at `rate` tokens per second; a call
takes one token from every bucket that applies, or is refused with the time until the
emptiest bucket has a token again (the retry-after hint).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.errors import QuotaExceeded


@dataclass(frozen=True, slots=True)
class Rate:
    """A sustained rate (calls per second) and the burst allowed above it."""

    per_second: float
    burst: float


class TokenBucket:
    """One bucket. Used from the event loop only."""

    def __init__(self, rate: Rate, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._clock = clock
        self._tokens = rate.burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(
            self._rate.burst, self._tokens + (now - self._stamp) * self._rate.per_second
        )
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if one is there now)."""
        self._refill()
        if self._tokens >= 1:
            return 0.0
        return (1 - self._tokens) / self._rate.per_second

    def take(self) -> None:
        """Takes one token; call only after `wait_time()` returned 0."""
        self._tokens -= 1


class QuotaBook:
    """The configured limits and their buckets (created on first use)."""

    def __init__(
        self,
        *,
        per_caller: Mapping[str, Rate],
        per_pair: Mapping[tuple[str, str], Rate],
        default_per_caller: Rate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_caller = dict(per_caller)
        self._per_pair = dict(per_pair)
        self._default = default_per_caller
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def _bucket(self, key: tuple[str, str], rate: Rate) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, self._clock)
        return bucket

    def acquire(self, caller: str, target: str) -> None:
        """Takes a token for a call from `caller` to `target` or raises `QuotaExceeded`.

        Either every applicable bucket gives a token or none does, so a refused call
        costs nothing.
        """
        buckets: list[tuple[str, TokenBucket]] = []
        caller_rate = self._per_caller.get(caller, self._default)
        if caller_rate is not None:
            buckets.append((f"caller {caller}", self._bucket((caller, ""), caller_rate)))
        pair_rate = self._per_pair.get((caller, target))
        if pair_rate is not None:
            buckets.append((f"{caller} -> {target}", self._bucket((caller, target), pair_rate)))
        waits = [(bucket.wait_time(), name) for name, bucket in buckets]
        worst = max(waits, default=(0.0, ""))
        if worst[0] > 0:
            raise QuotaExceeded(
                f"rate limit of {worst[1]} exceeded; retry after {worst[0]:.3f}s",
                retry_after=worst[0],
            )
        for _, bucket in buckets:
            bucket.take()
