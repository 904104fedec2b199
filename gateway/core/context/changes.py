"""Wakes Watch streams when their trace changes: locally at once, across replicas by NOTIFY.

A watcher takes the trace's current signal *before* it looks for changes and waits on
it only if it found none, so a write that lands between the look and the wait still
wakes it. Signals are hints: watchers also look again after a poll interval, which
covers a missed notification.
"""

from __future__ import annotations

import asyncio
import contextlib


class ChangeSignals:
    """One asyncio event per watched trace, replaced each time it fires. Loop thread only."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

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
