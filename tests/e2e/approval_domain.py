"""A one-capability domain for the task-replica test: `approval/wait` asks a human.

    python -m tests.e2e.approval_domain --gateway HOST:PORT --insecure --journal FILE

The handler pauses the task input-required and, once answered, returns who approved.
It makes no nested call, so it needs no gateway once the task runs: a gateway that
dies while the task waits can be replaced by any replica.
"""

from __future__ import annotations

from pydantic import BaseModel

from domains.entrypoint import main
from domains.sdk import Domain, TaskContext

domain = Domain(name="approval", owner="tests")


class Case(BaseModel):
    case: str


class Approval(BaseModel):
    case: str
    approved: bool
    approved_by: str


@domain.capability("wait", timeout=600.0)
async def wait(ctx: TaskContext, request: Case) -> Approval:
    """Waits for a human's answer to "approve the case?"."""
    answer = await ctx.ask(f"approve {request.case}?")
    return Approval(
        case=request.case,
        approved=bool(answer.input.get("approved")),
        approved_by=answer.responder,
    )


if __name__ == "__main__":
    main(domain)
