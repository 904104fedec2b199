"""Risk scoring: two signal agents in parallel, then a model with a rules fallback.

The verdict is written back into the trace's shared context as `risk/score`
(internal, as the capability declares), where support and finance read it.

The "model" agent stands in for an ML service that has no data on new customers;
when it cannot score, the deterministic rules agent does (a fallback).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from domains.sdk import Classification, Domain, TaskContext, agent, fallback, parallel, sequence

domain = Domain(name="risk", owner="risk-team@example.com")

# Refunds each known customer asked for in the last 90 days (a stand-in for a feature store).
RECENT_REFUNDS: dict[str, int] = {"c-1001": 0, "c-1002": 1, "c-2002": 4}


class ScoreRequest(BaseModel):
    """What risk needs to score a refund."""

    customer_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    amount: float = Field(ge=0, le=1_000_000)


class ScoreResult(BaseModel):
    """The risk verdict."""

    score: int = Field(ge=0, le=100)
    level: Literal["low", "medium", "high"]
    reasons: list[str]
    scorer: str


@agent("velocity-check")
async def velocity_check(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """How often the customer asked for refunds recently."""
    count = RECENT_REFUNDS.get(data["customer_id"])
    return {"recent_refunds": count, "known_customer": count is not None}


@agent("amount-check")
async def amount_check(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    """How large the amount is against the usual basket."""
    return {"large_amount": data["amount"] > 500, "amount": data["amount"]}


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in results:
        merged.update(part)
    return merged


@agent("model-scorer")
async def model_scorer(ctx: TaskContext, signals: dict[str, Any]) -> dict[str, Any]:
    """The learned model; it has no features for unknown customers."""
    if not signals["known_customer"]:
        raise LookupError("model has no features for this customer")
    score = min(100, 10 + 20 * signals["recent_refunds"] + (30 if signals["large_amount"] else 0))
    reasons = [f"{signals['recent_refunds']} refunds in 90 days"]
    if signals["large_amount"]:
        reasons.append("amount above 500")
    return {"score": score, "reasons": reasons, "scorer": "model"}


@agent("rules-scorer")
async def rules_scorer(ctx: TaskContext, signals: dict[str, Any]) -> dict[str, Any]:
    """Conservative rules for customers the model cannot score."""
    score = 50 + (40 if signals["large_amount"] else 0)
    reasons = ["unknown customer: rules-based score"]
    if signals["large_amount"]:
        reasons.append("amount above 500")
    return {"score": score, "reasons": reasons, "scorer": "rules"}


SCORING = sequence(
    parallel(velocity_check, amount_check, merge=_merge, name="signals"),
    fallback(model_scorer, rules_scorer, name="scorer"),
    name="risk-scoring",
)


def level_of(score: int) -> Literal["low", "medium", "high"]:
    """Buckets a score: below 40 low, below 75 medium, else high."""
    return "low" if score < 40 else "medium" if score < 75 else "high"


@domain.capability(
    "score",
    version="1.0.0",
    description="Scores the fraud risk of a refund (0-100) and buckets it low/medium/high.",
    idempotent=True,
    timeout=5.0,
    accepts=[Classification.INTERNAL, Classification.CONFIDENTIAL],
    returns=[Classification.INTERNAL],
)
async def score(ctx: TaskContext, request: ScoreRequest) -> ScoreResult:
    """Scores one refund request and writes the score back into the trace's context.

    The score is classified as the capability declares (internal): every domain of
    the refund flow may read it.
    """
    verdict = await SCORING(ctx, request.model_dump())
    result = ScoreResult(level=level_of(verdict["score"]), **verdict)
    await ctx.context.put(
        "risk/score", {"score": result.score, "level": result.level, "scorer": result.scorer}
    )
    return result
