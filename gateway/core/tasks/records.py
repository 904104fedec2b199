"""Stored tasks and their events, and the state machine every stored change obeys.

States follow A2A. A task is created `submitted` by the gateway; the domain moves
it to `working`, may pause it in `input-required` (a question for a human) and
resume it, and ends it `completed`, `failed` or `canceled`. Terminal states are
never left:

    submitted ──> working <──> input-required
        │            │              │
        └────────────┴──────────────┴──> completed | failed | canceled
    submitted ──> rejected
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.core.models import (
    CapabilityTarget,
    Payload,
    Principal,
    TaskError,
    TaskState,
    TaskUpdate,
)
from gateway.core.task import TaskInfo
from gateway.errors import GatewayError

_NEXT: dict[TaskState, frozenset[TaskState]] = {
    TaskState.SUBMITTED: frozenset(
        {
            TaskState.SUBMITTED,
            TaskState.WORKING,
            TaskState.INPUT_REQUIRED,
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.CANCELED,
            TaskState.REJECTED,
        }
    ),
    TaskState.WORKING: frozenset(
        {
            TaskState.WORKING,
            TaskState.INPUT_REQUIRED,
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.CANCELED,
        }
    ),
    TaskState.INPUT_REQUIRED: frozenset(
        {
            TaskState.WORKING,
            TaskState.INPUT_REQUIRED,
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.CANCELED,
        }
    ),
}

INPUT_NOT_KEPT = "input_not_kept"
"""`TaskError.code` of a long-running task a domain ended asking for input it cannot take."""


class InvalidTransition(GatewayError):
    """A change the state machine does not allow (for example out of a terminal state)."""


def check_transition(current: TaskState, update: TaskUpdate) -> TaskUpdate:
    """The update as it may be stored after `current`; raises `InvalidTransition`.

    A final update must end the task. A domain that ends a long-running task in
    `input-required` (it cannot pause, so nobody could ever answer) fails it
    instead, with the question as the reason, so no task waits forever.
    """
    if update.final and not update.state.terminal:
        if update.state is not TaskState.INPUT_REQUIRED:
            raise InvalidTransition(f"a final event must end the task, not leave it {update.state}")
        message = f"the domain ended the task asking for input it cannot wait for: {update.message}"
        update = replace(
            update,
            state=TaskState.FAILED,
            message=message,
            error=TaskError(INPUT_NOT_KEPT, message),
        )
    if not update.final and update.state.terminal:
        raise InvalidTransition(f"{update.state} is final, but the event is not")
    allowed = _NEXT.get(current, frozenset())
    if update.state not in allowed:
        raise InvalidTransition(f"a {current} task cannot become {update.state}")
    return update


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A long-running task as the gateway stores it."""

    task_id: str
    trace_id: str
    caller: Principal
    target: CapabilityTarget
    state: TaskState
    created_at: datetime
    updated_at: datetime
    message: str = ""
    output: Payload | None = None
    error: TaskError | None = None
    parent_task_id: str = ""
    deadline: datetime | None = None
    idempotency_key: str = ""
    request_hash: str = ""
    depth: int = 1
    call_path: tuple[str, ...] = field(default=())
    endpoint: str = ""
    """Endpoint of the target domain that runs the task ("" before it started there)."""
    domain_sequence: int = 0
    """Position in the domain's event stream up to which events are stored (for Attach)."""
    last_sequence: int = 0
    """Sequence number of the task's latest stored event."""
    owner: str = ""
    """Gateway instance that follows the task ("" once it ended)."""
    lease_expires_at: datetime | None = None
    """Until when `owner` holds the task; after that another instance may adopt it."""

    @property
    def terminal(self) -> bool:
        """True once the task ended."""
        return self.state.terminal

    def info(self) -> TaskInfo:
        """The task's identity and routing facts."""
        return TaskInfo(
            task_id=self.task_id,
            trace_id=self.trace_id,
            caller=self.caller,
            target=self.target,
            parent_task_id=self.parent_task_id,
            deadline=self.deadline,
            idempotency_key=self.idempotency_key,
            depth=self.depth,
            call_path=self.call_path,
            detached=True,
        )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored event of a task, numbered from 1."""

    task_id: str
    sequence: int
    state: TaskState
    at: datetime
    message: str = ""
    output: Payload | None = None
    error: TaskError | None = None
    final: bool = False

    def update(self) -> TaskUpdate:
        """The event as a task update."""
        return TaskUpdate(
            state=self.state,
            message=self.message,
            output=self.output,
            error=self.error,
            final=self.final,
        )


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters of a task listing; empty fields do not filter."""

    states: tuple[TaskState, ...] = ()
    target_domain: str = ""
    trace_id: str = ""
    visible_callers: tuple[str, ...] = ()
    """Only tasks submitted by these domains, or targeting `visible_targets`."""
    visible_targets: tuple[str, ...] = ()
    unrestricted: bool = False
    """True: every task matches (ignores the two visibility fields)."""
    limit: int = 50
