"""Task events as SDK callers see them: one step in the life of a task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domains.sdk.results import json_of
from federation.v1 import common_pb2 as pb
from gateway.core.models import TaskError, TaskState
from gateway.services import convert


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One event of a running task.

    Attributes:
        task_id: The task the event belongs to.
        sequence: Position in the task's stream, starting at 1.
        state: Task state after this event.
        message: Progress note, error text, or the question when input is required.
        output: The JSON output; set on the final event of a completed task.
        error: Error detail; set on the final event of a failed task.
        final: True on the last event of the stream.
    """

    task_id: str
    sequence: int
    state: TaskState
    message: str = ""
    output: dict[str, Any] | None = None
    error: TaskError | None = None
    final: bool = False


def event_from_proto(message: pb.TaskEvent) -> TaskEvent:
    """A wire TaskEvent as an SDK event (JSON output parsed into a dict).

    Raises:
        gateway.errors.InvalidRequest: The event has no status, an unspecified state,
            or an output that is not a JSON object.
    """
    update = convert.update_from_proto(message)
    output = json_of(update.output, message.task_id) if update.output is not None else None
    return TaskEvent(
        task_id=message.task_id,
        sequence=message.sequence,
        state=update.state,
        message=update.message,
        output=output,
        error=update.error,
        final=update.final,
    )
