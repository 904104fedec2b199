"""Exceptions the SDK adds to the gateway's tree.

    Exception
    ├── InputRequired              a handler escalates to a human; the task ends
    │                              in state input-required with the question
    ├── Declined                   a human declined an escalation; the task fails
    └── gateway.errors.GatewayError    (see `gateway.errors` for the full tree)
        ├── CallFailed             a call through the gateway ran but ended without
        │                          output (failed, canceled, rejected, input-required)
        └── ...                    statuses mapped back by `gateway.services.status_map`

`InputRequired` is not a failure: the workflow combinators (`retry`, `fallback`)
let it through untouched so an escalation always reaches the caller.
"""

from __future__ import annotations

from gateway.core.models import TaskError, TaskState
from gateway.errors import GatewayError


class InputRequired(Exception):
    """Raised by `TaskContext.require_input`: the task needs a human's answer.

    Attributes:
        question: What the human is asked; becomes the task's status message.
    """

    def __init__(self, question: str) -> None:
        super().__init__(question)
        self.question = question


class Declined(Exception):
    """A human answered an escalation without approving it; the task fails with the reason."""


class CallFailed(GatewayError):
    """A task invoked through the gateway ended in a state other than completed.

    Attributes:
        task_id: The remote task.
        state: The state it ended in.
        error: The remote error detail, when the task failed.
    """

    def __init__(
        self, message: str, *, task_id: str, state: TaskState, error: TaskError | None = None
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.state = state
        self.error = error
        self.retryable = error.retryable if error is not None else False
