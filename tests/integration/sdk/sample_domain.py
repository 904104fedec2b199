"""A small domain exercising every path of the orchestrator service, for the SDK tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from domains.sdk import Classification, Domain, TaskContext


class ScoreRequest(BaseModel):
    customer: str
    amount: float = Field(gt=0)


class ScoreResult(BaseModel):
    customer: str
    score: float


class Empty(BaseModel):
    pass


class RelayRequest(BaseModel):
    target: str = "risk/score"
    payload: dict[str, object] = {}


class RelayResult(BaseModel):
    answer: dict[str, object]


@dataclass
class Probe:
    """Lets a test see inside handlers: when they start and whether they were canceled."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    canceled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    remaining: list[float | None] = field(default_factory=list)


def build_domain(name: str = "risk", probe: Probe | None = None) -> Domain:
    """A domain with one capability per behaviour under test."""
    probe = probe or Probe()
    domain = Domain(name=name, owner=f"{name}-team")

    @domain.capability(
        "score",
        version="1.0.0",
        idempotent=True,
        timeout=5.0,
        accepts=[Classification.INTERNAL],
        returns=[Classification.INTERNAL],
    )
    async def score(ctx: TaskContext, req: ScoreRequest) -> ScoreResult:
        """Scores a transaction."""
        await ctx.report(f"scoring {req.customer}")
        await ctx.report("rules checked")
        return ScoreResult(customer=req.customer, score=round(req.amount / 1000, 3))

    @domain.capability("explode")
    async def explode(ctx: TaskContext, req: Empty) -> Empty:
        raise ValueError("the model is on fire")

    @domain.capability("approve")
    async def approve(ctx: TaskContext, req: ScoreRequest) -> ScoreResult:
        await ctx.report("over the limit")
        ctx.require_input(f"approve {req.amount} for {req.customer}?")

    @domain.capability("wait", timeout=60.0)
    async def wait(ctx: TaskContext, req: Empty) -> Empty:
        probe.remaining.append(ctx.time_remaining())
        probe.started.set()
        try:
            await probe.release.wait()
        except asyncio.CancelledError:
            probe.canceled.set()
            raise
        return Empty()

    @domain.capability("slow", timeout=0.2)
    async def slow(ctx: TaskContext, req: Empty) -> Empty:
        probe.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            probe.canceled.set()
            raise
        return Empty()

    @domain.capability("bad-output")
    async def bad_output(ctx: TaskContext, req: Empty) -> ScoreResult:
        return {"customer": "x"}  # type: ignore[return-value]

    @domain.capability("relay")
    async def relay(ctx: TaskContext, req: RelayRequest) -> RelayResult:
        return RelayResult(answer=await ctx.call(req.target, req.payload, idempotency_key="k1"))

    return domain
