"""What `fedgate demo` runs: its calls, shared-context steps and long-running task steps.

Each step is a `fedgate` command line as a person would type it, the exit code it
should end with and what it shows; `gateway.cli.demo` runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """One `fedgate call` of the tour and the exit code it should end with."""

    title: str
    target: str
    input: dict[str, object]
    expect_exit: int
    expect: str
    in_demo_trace: bool = False
    """Run in the demo's trace, whose shared context the context steps then show."""


@dataclass(frozen=True)
class CliStep:
    """One other `fedgate` command of the tour (`{trace}` is the demo trace)."""

    title: str
    args: tuple[str, ...]
    expect_exit: int
    expect: str
    shows: str
    """Text the command's output must contain."""


SCENARIOS = (
    Scenario(
        "refund for a loyal customer",
        "support/open-refund-case",
        {"customer_id": "c-1001", "order_id": "o-5001", "amount": 42.5, "reason": "arrived broken"},
        0,
        "completed: support -> risk, support -> finance -> risk",
        in_demo_trace=True,
    ),
    Scenario(
        "large refund for an unknown customer",
        "support/open-refund-case",
        {"customer_id": "c-9999", "order_id": "o-7777", "amount": 2500, "reason": "never arrived"},
        3,
        "input-required: escalated to a human",
    ),
    Scenario(
        "malformed request",
        "support/open-refund-case",
        {"customer_id": "c-1001", "order_id": "o-5002", "amount": -5, "reason": "double charge"},
        2,
        "INVALID_ARGUMENT with the JSON path",
    ),
    Scenario(
        "capability that does not exist",
        "finance/wire-money",
        {"amount": 1},
        1,
        "NOT_FOUND",
    ),
    Scenario(
        "operator pays a refund directly, bypassing support's case",
        "finance/issue-refund",
        {"case_id": "case-x", "customer_id": "c-1001", "order_id": "o-5003", "amount": 900},
        1,
        "PERMISSION_DENIED: needs invoke on finance/issue-refund",
    ),
)

CONTEXT_STEPS = (
    CliStep(
        "the refund's shared context, as finance sees it",
        ("context", "list", "--trace", "{trace}", "--as", "finance"),
        0,
        "case and risk/score whole; support's restricted notes redacted",
        "redacted",
    ),
    CliStep(
        "support reads its own notes",
        ("context", "get", "case/notes", "--trace", "{trace}", "--as", "support"),
        0,
        "restricted, whole: it never left support",
        "restricted",
    ),
    CliStep(
        "a stale write of the case",
        (
            "context",
            "put",
            "case",
            "--trace",
            "{trace}",
            "--value",
            "{{}}",
            "-e",
            "0",
            "--as",
            "support",
        ),
        1,
        "ABORTED: names the current version",
        "current version is 1",
    ),
    CliStep(
        "where did support's notes go? (lineage from the audit trail)",
        ("audit", "lineage", "--trace", "{trace}", "--key", "case/notes", "--as", "auditor"),
        0,
        "written by support, redacted for finance",
        "redacted",
    ),
)

TASK_INPUT = (
    '{"customer_id": "c-9999", "order_id": "o-7778", "amount": 2500, "reason": "never arrived"}'
)
"""A high-risk refund: support's workflow escalates it to a human approver."""

TASK_STEPS = (
    CliStep(
        "the large refund as a long-running task: the id comes back at once",
        ("task", "submit", "support/open-refund-case", "--input", TASK_INPUT),
        0,
        "a task id",
        "",
    ),
    CliStep(
        "follow it until it needs a human",
        ("task", "watch", "{task}"),
        3,
        "input-required: waits for an approver",
        "input-required",
    ),
    CliStep(
        "the operator may not approve its own case",
        ("task", "respond", "{task}", "--input", '{{"approved": true}}'),
        1,
        "PERMISSION_DENIED: needs respond",
        "PERMISSION_DENIED",
    ),
    CliStep(
        "the approver approves",
        ("task", "respond", "{task}", "--input", '{{"approved": true}}', "--as", "approver"),
        0,
        "accepted: the task resumes",
        "",
    ),
    CliStep(
        "the refund completes with the approval",
        ("task", "watch", "{task}"),
        0,
        "completed: finance paid the approved refund",
        "completed",
    ),
)
