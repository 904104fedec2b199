"""Picks an endpoint among a domain's live replicas: least outstanding requests first."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


class Balancer:
    """Least-outstanding-requests choice; ties rotate so idle replicas share the load."""

    def __init__(self) -> None:
        self._in_flight: dict[str, int] = {}
        self._turn = itertools.count()

    def pick(self, addresses: Sequence[str]) -> str:
        """The address with the fewest calls in flight (rotating among equals)."""
        return self.order(addresses)[0]

    def order(self, addresses: Sequence[str]) -> list[str]:
        """Addresses by preference: fewest calls in flight first, equals in rotating order."""
        start = next(self._turn) % len(addresses)
        rotated = [*addresses[start:], *addresses[:start]]
        return sorted(rotated, key=lambda a: self._in_flight.get(a, 0))

    @contextmanager
    def track(self, address: str) -> Iterator[None]:
        """Counts one call in flight to `address` for the duration of the block."""
        self._in_flight[address] = self._in_flight.get(address, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight[address] - 1
            if left:
                self._in_flight[address] = left
            else:
                del self._in_flight[address]

    def in_flight(self, address: str) -> int:
        """Calls currently in flight to `address`."""
        return self._in_flight.get(address, 0)
