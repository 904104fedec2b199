"""Seams of the task manager: the task store and the link to domains' running tasks."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from gateway.core.models import Payload, TaskUpdate
from gateway.core.tasks.records import StoredEvent, StoredTask, TaskQuery


class TaskStore(Protocol):
    """Durable tasks and events, shared by every gateway replica.

    Every method is one transaction and raises `gateway.errors.StoreUnavailable`
    when the database cannot be reached.
    """

    def create(self, task: StoredTask, first: StoredEvent) -> StoredTask:
        """Stores a new task with its first event; returns the stored task.

        A task id that is already stored is left as it is and returned.
        """
        ...

    def append(
        self,
        task_id: str,
        update: TaskUpdate,
        *,
        owner: str,
        now: datetime,
        endpoint: str = "",
        lease_ttl: timedelta | None = None,
    ) -> StoredEvent | None:
        """Appends an event and moves the task's state (`check_transition`).

        `update.sequence` > 0 records the domain's stream position; a non-empty
        `endpoint` records where the task runs. Returns None, changing nothing,
        when `owner` does not hold the task (another instance adopted it) or the
        task already ended. Raises `InvalidTransition` for a change the state
        machine refuses.
        """
        ...

    def get(self, task_id: str) -> StoredTask | None:
        """The task, or None."""
        ...

    def events(self, task_id: str, *, after: int, limit: int) -> list[StoredEvent]:
        """Events with a sequence number above `after`, in order, at most `limit`."""
        ...

    def query(self, query: TaskQuery) -> list[StoredTask]:
        """Tasks matching the query, newest first."""
        ...

    def find_by_key(self, caller: str, key: str) -> StoredTask | None:
        """The task a caller domain submitted with an idempotency key, or None."""
        ...

    def adopt(
        self, *, owner: str, now: datetime, ttl: timedelta, own: bool, limit: int
    ) -> list[StoredTask]:
        """Takes over unfinished tasks whose owner's lease ran out (and, with `own`,
        those `owner` already holds), leasing them to `owner` until `now + ttl`.

        Replicas adopting at once never take the same task twice.
        """
        ...

    def renew(self, *, owner: str, task_ids: Sequence[str], now: datetime, ttl: timedelta) -> int:
        """Extends `owner`'s lease on the given unfinished tasks; returns how many."""
        ...


class DomainLink(Protocol):
    """What the gateway asks of a domain about a long-running task it runs."""

    def attach(
        self, address: str, domain: str, task_id: str, after: int
    ) -> AsyncGenerator[TaskUpdate, None]:
        """Streams the task's events after domain position `after`, until the final one.

        Raises `TaskNotFound` when the endpoint does not know the task and
        `DomainUnavailable` when it cannot be reached or goes away.
        """
        ...

    async def respond(
        self, address: str, domain: str, task_id: str, answer: Payload, responder: str
    ) -> None:
        """Answers a task waiting for input.

        Raises `TaskNotFound`, `TaskNotWaiting`, `InvalidRequest` (the domain
        refused the answer) or `DomainUnavailable`.
        """
        ...

    async def cancel_task(self, address: str, domain: str, task_id: str, reason: str) -> bool:
        """Asks the endpoint to cancel the task; True if it was running there."""
        ...
