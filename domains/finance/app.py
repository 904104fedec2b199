"""Refunds: finance asks risk itself (a nested call), checks its limits, then books.

Finance does not trust a score handed to it by another domain: it makes its own
nested call to `risk/score` in the same trace. Large or high-risk refunds are
escalated to a human approver (the task ends input-required). The ledger agent
is retried, and books each case once even if the handler runs again.
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


class RefundResult(BaseModel):
    """The booked refund."""

    refund_id: str
    amount: float
    status: Literal["issued"]
    risk_level: str


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
    )
    return {**data, "risk_level": verdict["level"], "risk_score": verdict["score"]}


def _needs_approval(data: dict[str, Any]) -> bool:
    return bool(data["amount"] > AUTO_APPROVE_LIMIT or data["risk_level"] == "high")


@agent("ledger")
async def ledger(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Books the refund once per case."""
    refund_id = LEDGER.setdefault(
        data["case_id"], "rf-" + hashlib.sha256(data["case_id"].encode()).hexdigest()[:10]
    )
    return {**data, "refund_id": refund_id}


REFUND = sequence(
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
    """Checks risk and limits, then books the refund."""
    booked = await REFUND(ctx, request.model_dump())
    return RefundResult(
        refund_id=booked["refund_id"],
        amount=booked["amount"],
        status="issued",
        risk_level=booked["risk_level"],
    )
