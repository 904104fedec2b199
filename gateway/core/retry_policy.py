"""Retries with exponential backoff and full jitter, within the caller's deadline."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently the gateway retries an idempotent call."""

    max_attempts: int = 3
    """Total attempts including the first; 1 disables retries."""
    base_backoff: float = 0.05
    """Upper bound of the first pause in seconds; doubles per attempt."""
    max_backoff: float = 1.0
    """Cap on one pause."""

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Pause after failed attempt number `attempt` (1-based): full jitter."""
        ceiling = min(self.max_backoff, self.base_backoff * 2.0 ** (attempt - 1))
        return ceiling * rand()
