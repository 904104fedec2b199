"""Picks an endpoint among a domain's live replicas: least outstanding requests first."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from types import TracebackType


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

    def track(self, address: str) -> _Tracking:
        """Counts one call in flight to `address` for the duration of the block."""
        return _Tracking(self._in_flight, address)

    def in_flight(self, address: str) -> int:
        """Calls currently in flight to `address`."""
        return self._in_flight.get(address, 0)


class _Tracking:
    """One call in flight to an address, while the `with` block runs.

    A plain class rather than `@contextmanager`: every routed call enters one, and the
    generator-based manager costs several times as much.
    """

    __slots__ = ("_address", "_in_flight")

    def __init__(self, in_flight: dict[str, int], address: str) -> None:
        self._in_flight = in_flight
        self._address = address

    def __enter__(self) -> None:
        self._in_flight[self._address] = self._in_flight.get(self._address, 0) + 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        left = self._in_flight[self._address] - 1
        if left:
            self._in_flight[self._address] = left
        else:
            del self._in_flight[self._address]
