"""Conversion between stored tasks and `federation.v1.tasks` messages."""

from __future__ import annotations

from federation.v1 import common_pb2 as pb
from federation.v1 import tasks_pb2 as tk
from gateway.core.tasks.records import StoredEvent, StoredTask
from gateway.services import convert


def record_to_proto(task: StoredTask) -> tk.TaskRecord:
    """A stored task as a wire TaskRecord."""
    record = tk.TaskRecord(
        task=convert.task_to_proto(task.info(), task.state, task.message, task.updated_at),
        last_sequence=task.last_sequence,
        created_at=convert.timestamp_to_proto(task.created_at),
        owner=task.owner,
        endpoint=task.endpoint,
    )
    if task.output is not None:
        record.output.CopyFrom(convert.payload_to_proto(task.output))
    if task.error is not None:
        record.error.CopyFrom(
            pb.TaskError(
                code=task.error.code, message=task.error.message, retryable=task.error.retryable
            )
        )
    return record


def event_to_proto(event: StoredEvent) -> pb.TaskEvent:
    """A stored event as a wire TaskEvent (with the time it was stored)."""
    message = convert.update_to_proto(event.update(), event.task_id, event.sequence)
    message.status.timestamp.CopyFrom(convert.timestamp_to_proto(event.at))
    return message
