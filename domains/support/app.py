"""Refund cases: intake and customer history in parallel, a risk score, then a branch.

Support opens the case, files it in the trace's shared context (`case`, confidential,
and its own notes `case/notes`, restricted), asks risk for a score (a nested
cross-domain call that gets the case attached) and, unless the risk is high, asks
finance to pay, attaching the case, the notes and risk's score: the gateway hands
finance the case and the score and redacts the restricted notes. High-risk cases are
escalated to a human: submitted as a long-running task (`fedgate task submit`) the
case waits input-required until a refund approver answers (`fedgate task respond`),
then pays with the approval; called synchronously the task ends input-required.
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
    parallel,
    sequence,
)

domain = Domain(name="support", owner="support-team@example.com")

# Orders per customer (a stand-in for the CRM).
CUSTOMERS: dict[str, dict[str, Any]] = {
    "c-1001": {"name": "Ada", "orders": 14, "since": "2019"},
    "c-1002": {"name": "Grace", "orders": 3, "since": "2024"},
}


class RefundCaseRequest(BaseModel):
    """A customer's refund request."""

    customer_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    amount: float = Field(gt=0, le=1_000_000)
    reason: str = Field(min_length=3, max_length=500)


class RefundCaseResult(BaseModel):
    """How the case ended."""

    case_id: str
    status: Literal["refunded"]
    risk_level: str
    risk_score: int
    refund_id: str
    customer_orders: int


@agent("intake")
async def intake(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Opens the case: a stable case id per order, so a retried request is the same case."""
    case_id = "case-" + hashlib.sha256(data["order_id"].encode()).hexdigest()[:8]
    return {"case_id": case_id}


@agent("history")
async def history(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Looks the customer up in the CRM."""
    customer = CUSTOMERS.get(data["customer_id"], {"orders": 0})
    return {"customer_orders": customer["orders"]}


CASE_KEYS = ("case_id", "customer_id", "order_id", "amount")


@agent("case-file")
async def case_file(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Files the case in the shared context: the case itself, and support's own notes."""
    await ctx.context.put(
        "case", {k: data[k] for k in CASE_KEYS}, classification=Classification.CONFIDENTIAL
    )
    await ctx.context.put(
        "case/notes",
        {"reason": data["reason"], "customer_orders": data["customer_orders"]},
        classification=Classification.RESTRICTED,
    )
    return data


@agent("risk-assessment")
async def risk_assessment(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Asks the risk domain to score the refund, handing it the case."""
    verdict = await ctx.call(
        "risk/score",
        {
            "customer_id": data["customer_id"],
            "order_id": data["order_id"],
            "amount": data["amount"],
        },
        agent="agent/risk-assessment",
        context=["case"],
    )
    return {**data, "risk_level": verdict["level"], "risk_score": verdict["score"]}


@agent("refund-request")
async def refund_request(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """Asks finance to pay the refund, attaching the case, support's notes and the score.

    The notes are restricted: the flow rules let finance see that they exist, not
    what they say (the gateway redacts them and records the redaction).
    """
    request = {k: data[k] for k in CASE_KEYS}
    if data.get("approved_by"):
        request["approved_by"] = data["approved_by"]  # the human who approved the case
    paid = await ctx.call(
        "finance/issue-refund",
        request,
        agent="agent/refund-request",
        context=["case", "case/notes", "risk/score"],
    )
    return {**data, "refund_id": paid["refund_id"]}


def _merge(data: dict[str, Any]) -> Any:
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        merged = dict(data)
        for part in parts:
            merged.update(part)
        return merged

    return merge


def _high_risk(data: dict[str, Any]) -> bool:
    return bool(data["risk_level"] == "high")


@domain.capability(
    "open-refund-case",
    version="1.0.0",
    description="Opens a refund case, has risk score it and finance pay it (or escalates).",
    idempotent=False,
    timeout=20.0,
    accepts=[Classification.CONFIDENTIAL],
    returns=[Classification.CONFIDENTIAL, Classification.RESTRICTED],
)
async def open_refund_case(ctx: TaskContext, request: RefundCaseRequest) -> RefundCaseResult:
    """Runs the refund workflow for one customer request."""
    data = request.model_dump()
    workflow = sequence(
        parallel(intake, history, merge=_merge(data), name="open-case"),
        case_file,
        risk_assessment,
        conditional(
            _high_risk,
            sequence(
                escalate(
                    lambda d: (
                        f"case {d['case_id']}: risk is high (score {d['risk_score']}); "
                        "approve the refund manually?"
                    ),
                    name="supervisor",
                ),
                refund_request,
                name="approved-refund",
            ),
            refund_request,
            name="route-by-risk",
        ),
        name="refund-case",
    )
    done = await workflow(ctx, data)
    return RefundCaseResult(
        case_id=done["case_id"],
        status="refunded",
        risk_level=done["risk_level"],
        risk_score=done["risk_score"],
        refund_id=done["refund_id"],
        customer_orders=done["customer_orders"],
    )
