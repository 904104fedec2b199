"""Refunds: finance asks risk itself (a nested call), checks its limits, then books.

Support attaches the case, its notes and risk's score from the shared context;
the gateway redacts the notes (restricted) for finance, which reports what it got,
checks the request against the case, and writes the booked refund back
(`finance/refund`, confidential as declared).

Finance does not trust a score handed to it by another domain: it makes its own
nested call to `risk/score` in the same trace. Large or high-risk refunds need a
human approver: one who approved the calling case (`approved_by`, a refund
approver the shared policy let answer it, recorded in the audit trail) counts;
otherwise the refund is escalated. The ledger agent is retried, and books each
case once even if the handler runs again.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field

from domains.sdk import (
    Classification,
    Domain,
    TaskContext,
    agent,
    conditional,
    escalate,
    retry,
    sequence,
)

domain = Domain(name="finance", owner="finance-team@example.com")

AUTO_APPROVE_LIMIT = 1_000.0
"""Refunds above this amount always need a human approver."""

# case id -> refund id. In-process stand-in for the ledger: booking is idempotent per case.
LEDGER: dict[str, str] = {}


class IssueRefundRequest(BaseModel):
    """A refund support wants paid."""

    case_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    amount: float = Field(gt=0, le=1_000_000)
    approved_by: str = Field("", max_length=200)
    """The human who approved the refund upstream (a refund approver), if any."""


class RefundResult(BaseModel):
    """The booked refund."""

    refund_id: str
    amount: float
    status: Literal["issued"]
    risk_level: str


@agent("case-review")
async def case_review(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Reads what support attached: the case and risk's score, and notes what was withheld."""
    for key, view in sorted(ctx.context.attached.items()):
        if view.redacted:
            await ctx.report(
                f"context {key}: withheld ({view.item.classification.name.lower()}, "
                f"owned by {view.item.owner})"
            )
        else:
            await ctx.report(f"context {key}@{view.item.version}: received")
    if "case" in ctx.context.attached and not ctx.context.attached["case"].redacted:
        case = ctx.context.value("case")
        if case["case_id"] != data["case_id"] or case["amount"] != data["amount"]:
            raise ValueError("the request does not match the case in the shared context")
    return data


@agent("risk-check")
async def risk_check(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Finance's own nested call to risk (same trace, parent = this task)."""
    verdict = await ctx.call(
        "risk/score",
        {
            "customer_id": data["customer_id"],
            "order_id": data["order_id"],
            "amount": data["amount"],
        },
        agent="agent/risk-check",
        context=["case"],
    )
    return {**data, "risk_level": verdict["level"], "risk_score": verdict["score"]}


def _needs_approval(data: dict[str, Any]) -> bool:
    if data.get("approved_by"):
        return False
    return bool(data["amount"] > AUTO_APPROVE_LIMIT or data["risk_level"] == "high")


@agent("ledger")
async def ledger(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Books the refund once per case."""
    refund_id = LEDGER.setdefault(
        data["case_id"], "rf-" + hashlib.sha256(data["case_id"].encode()).hexdigest()[:10]
    )
    return {**data, "refund_id": refund_id}


REFUND = sequence(
    case_review,
    risk_check,
    conditional(
        _needs_approval,
        escalate(
            lambda d: (
                f"approve refund of {d['amount']:.2f} for case {d['case_id']} "
                f"(risk {d['risk_level']}, score {d['risk_score']})?"
            ),
            name="approver",
        ),
        name="limits",
    ),
    retry(ledger, attempts=3),
    name="refund",
)


@domain.capability(
    "issue-refund",
    version="1.0.0",
    description="Pays a refund for a support case after finance's own risk check.",
    idempotent=False,
    timeout=15.0,
    accepts=[Classification.INTERNAL, Classification.CONFIDENTIAL],
    returns=[Classification.CONFIDENTIAL],
)
async def issue_refund(ctx: TaskContext, request: IssueRefundRequest) -> RefundResult:
    """Checks the case, risk and limits, books the refund and records it in the context."""
    booked = await REFUND(ctx, request.model_dump())
    result = RefundResult(
        refund_id=booked["refund_id"],
        amount=booked["amount"],
        status="issued",
        risk_level=booked["risk_level"],
    )
    await ctx.context.put("finance/refund", result.model_dump(mode="json"))
    return result
