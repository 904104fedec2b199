"""Tasks in flight on this gateway, by id: the authority for nested-call chains."""

from __future__ import annotations

from gateway.core.task import TaskInfo


class TaskTable:
    """In-memory map of running tasks. Persisted long-running tasks are a later layer."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskInfo] = {}

    def add(self, task: TaskInfo) -> None:
        """Tracks a task from the moment it is routed."""
        self._tasks[task.task_id] = task

    def remove(self, task_id: str) -> None:
        """Forgets a finished task."""
        self._tasks.pop(task_id, None)

    def get(self, task_id: str) -> TaskInfo | None:
        """The running task with that id, if this gateway runs it."""
        return self._tasks.get(task_id)

    def __len__(self) -> int:
        return len(self._tasks)
