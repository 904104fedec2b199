"""The task state machine: which changes a stored task may take."""

from __future__ import annotations

import pytest

from gateway.core.models import TaskState, TaskUpdate
from gateway.core.tasks.records import INPUT_NOT_KEPT, InvalidTransition, check_transition

S = TaskState

ALLOWED = [
    (S.SUBMITTED, TaskUpdate(S.WORKING, "started")),
    (S.SUBMITTED, TaskUpdate(S.FAILED, "no endpoint", final=True)),
    (S.SUBMITTED, TaskUpdate(S.REJECTED, "refused", final=True)),
    (S.WORKING, TaskUpdate(S.WORKING, "progress")),
    (S.WORKING, TaskUpdate(S.INPUT_REQUIRED, "approve?")),
    (S.INPUT_REQUIRED, TaskUpdate(S.WORKING, "resumed")),
    (S.INPUT_REQUIRED, TaskUpdate(S.CANCELED, "canceled", final=True)),
    (S.WORKING, TaskUpdate(S.COMPLETED, "done", final=True)),
]

REFUSED = [
    (S.COMPLETED, TaskUpdate(S.WORKING, "again"), "cannot become"),
    (S.FAILED, TaskUpdate(S.COMPLETED, "late", final=True), "cannot become"),
    (S.CANCELED, TaskUpdate(S.INPUT_REQUIRED, "late"), "cannot become"),
    (S.WORKING, TaskUpdate(S.REJECTED, "too late to reject", final=True), "cannot become"),
    (S.WORKING, TaskUpdate(S.COMPLETED, "not final"), "is final, but the event is not"),
    (S.WORKING, TaskUpdate(S.WORKING, "final but working", final=True), "must end the task"),
]


@pytest.mark.parametrize(("current", "update"), ALLOWED)
def test_allowed_changes_pass_unchanged(current: TaskState, update: TaskUpdate) -> None:
    assert check_transition(current, update) == update


@pytest.mark.parametrize(("current", "update", "why"), REFUSED)
def test_refused_changes_raise(current: TaskState, update: TaskUpdate, why: str) -> None:
    with pytest.raises(InvalidTransition, match=why):
        check_transition(current, update)


def test_a_final_input_required_fails_the_task_with_the_question() -> None:
    # A domain that cannot pause ends the task asking; nobody could ever answer it.
    checked = check_transition(S.WORKING, TaskUpdate(S.INPUT_REQUIRED, "approve?", final=True))
    assert checked.state is S.FAILED
    assert checked.final
    assert checked.error is not None
    assert checked.error.code == INPUT_NOT_KEPT
    assert "approve?" in checked.message
