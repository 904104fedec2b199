"""Wakes Watch streams when their trace changes: locally at once, across replicas by NOTIFY.

A watcher takes the trace's current signal *before* it looks for changes and waits on
it only if it found none, so a write that lands between the look and the wait still
wakes it. Signals are hints: watchers also look again after a poll interval, which
covers a missed notification.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class ChangeSignals:
    """One asyncio event per watched trace, replaced each time it fires. Loop thread only.

    A trace's event is dropped when its last watcher leaves (`watching`), so traces
    watched once and never written do not stay in memory.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._watchers: dict[str, int] = {}

    def __len__(self) -> int:
        """How many traces have an event waiting to fire."""
        return len(self._events)

    @contextlib.contextmanager
    def watching(self, trace_id: str) -> Iterator[None]:
        """Counts a watcher of `trace_id` while the block runs."""
        self._watchers[trace_id] = self._watchers.get(trace_id, 0) + 1
        try:
            yield
        finally:
            left = self._watchers.pop(trace_id) - 1
            if left:
                self._watchers[trace_id] = left
            else:
                self._events.pop(trace_id, None)

    def signal(self, trace_id: str) -> asyncio.Event:
        """The event the next change of `trace_id` sets."""
        event = self._events.get(trace_id)
        if event is None:
            event = self._events[trace_id] = asyncio.Event()
        return event

    def notify(self, trace_id: str) -> None:
        """Wakes the watchers of `trace_id`."""
        event = self._events.pop(trace_id, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        """Wakes every watcher (a notification from another replica, trace unknown)."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109
        """Waits until `event` is set or `timeout` seconds passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
