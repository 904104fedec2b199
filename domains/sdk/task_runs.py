"""Tasks a domain runs, with their events, so a stream can be followed from any position.

Every task's events are kept in order while it runs. A task run for `Invoke`
lives as long as the gateway's `Execute` stream. A detached (long-running) task
outlives it: it keeps running when the gateway goes away, and its events stay
(`retention` seconds after it ended) so a gateway can re-attach (`Attach`) from
the position it had stored, answer its questions (`Respond`) or cancel it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from federation.v1 import common_pb2 as pb
from gateway.core.models import TaskUpdate
from gateway.services import convert

DEFAULT_RETENTION = 600.0
"""Seconds a detached task's events are kept after it ended."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A human's answer to a task's question (`TaskContext.ask`).

    Attributes:
        input: The answer, for example `{"approved": true}`.
        responder: Who answered, as the gateway authorised them (`cli`, `approver`, ...).
    """

    input: dict[str, Any]
    responder: str


@dataclass(eq=False)
class TaskRun:
    """One task this domain runs: its handler, events and pending question."""

    task_id: str
    detached: bool
    events: list[pb.TaskEvent] = field(default_factory=list)
    runner: asyncio.Task[None] | None = None
    cancel_reason: str = ""
    answer: asyncio.Future[Answer] | None = None
    """Set while the task waits for input."""
    ended_at: float | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, update: TaskUpdate) -> None:
        """Appends an event (numbered from 1) and wakes the streams following the task."""
        self.events.append(_event(update, self.task_id, len(self.events) + 1))
        if update.final:
            self.ended_at = time.monotonic()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self, after: int) -> AsyncIterator[pb.TaskEvent]:
        """Yields the events after position `after`, then new ones, until the final one."""
        position = after
        while True:
            while position < len(self.events):
                event = self.events[position]
                position += 1
                yield event
                if event.final:
                    return
            if self.ended_at is not None:
                return
            await self._changed.wait()


class TaskRuns:
    """The tasks a domain runs or ran recently, by task id."""

    def __init__(self, retention: float = DEFAULT_RETENTION) -> None:
        self._runs: dict[str, TaskRun] = {}
        self._retention = retention

    def start(self, task_id: str, *, detached: bool) -> TaskRun | None:
        """A new run for `task_id`, or None when the domain already has one."""
        self._purge()
        if task_id in self._runs:
            return None
        run = self._runs[task_id] = TaskRun(task_id, detached)
        return run

    def get(self, task_id: str) -> TaskRun | None:
        """The run of `task_id`, if the domain still knows it."""
        self._purge()
        return self._runs.get(task_id)

    def discard(self, task_id: str) -> None:
        """Forgets a run."""
        self._runs.pop(task_id, None)

    def running(self) -> tuple[str, ...]:
        """Ids of the tasks whose handlers are running now."""
        return tuple(
            task_id
            for task_id, run in self._runs.items()
            if run.runner is not None and not run.runner.done()
        )

    def runners(self) -> list[asyncio.Task[None]]:
        """Every handler task still running."""
        return [r.runner for r in self._runs.values() if r.runner and not r.runner.done()]

    def _purge(self) -> None:
        horizon = time.monotonic() - self._retention
        for task_id in [
            t for t, r in self._runs.items() if r.ended_at is not None and r.ended_at < horizon
        ]:
            del self._runs[task_id]


def _event(update: TaskUpdate, task_id: str, sequence: int) -> pb.TaskEvent:
    if update.output is None or update.output.json is None:
        return convert.update_to_proto(update, task_id, sequence)
    # Output travels as JSON bytes: cheaper to encode and decode than a Struct.
    event = convert.update_to_proto(replace(update, output=None), task_id, sequence)
    event.output.CopyFrom(convert.json_payload(dict(update.output.json)))
    return event
