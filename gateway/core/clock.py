"""Wall-clock time as the core sees it: always timezone-aware UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A function returning the current time, aware UTC. Tests may pass their own."""


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)
