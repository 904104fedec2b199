"""Agents and the workflow combinators: ordering, concurrency, retries, fallbacks, escalation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from domains.sdk import (
    Agent,
    FunctionAgent,
    InputRequired,
    TaskContext,
    agent,
    conditional,
    escalate,
    fallback,
    parallel,
    retry,
    sequence,
)
from domains.sdk.testing import local_context
from domains.sdk.workflow import Retry


class Boom(Exception):
    pass


class Other(Exception):
    pass


def add(name: str, value: int, log: list[str] | None = None) -> Agent:
    async def run(ctx: TaskContext, data: int) -> int:
        if log is not None:
            log.append(name)
        return data + value

    return FunctionAgent(name, run)


def failing(name: str, log: list[str], exc: Exception | None = None) -> Agent:
    async def run(ctx: TaskContext, data: Any) -> Any:
        log.append(name)
        raise exc or Boom(name)

    return FunctionAgent(name, run)


class Flaky(Agent):
    """Fails `failures` times, then returns the data."""

    def __init__(self, failures: int, exc: type[Exception] = Boom) -> None:
        super().__init__("flaky")
        self.failures = failures
        self.calls = 0
        self.exc = exc

    async def run(self, ctx: TaskContext, data: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return data


# --- agents -------------------------------------------------------------------


async def test_agent_decorator_names_and_reports() -> None:
    @agent()
    async def score_customer(ctx: TaskContext, data: int) -> int:
        await ctx.report("halfway")
        return data * 2

    ctx, notes = local_context("risk")

    assert score_customer.name == "score-customer"
    assert await score_customer(ctx, 21) == 42
    assert notes == [
        "agent risk/score-customer: started",
        "halfway",
        "agent risk/score-customer: done",
    ]


async def test_agent_failure_is_reported_and_propagates() -> None:
    ctx, notes = local_context("risk")

    with pytest.raises(Boom):
        await failing("scorer", [])(ctx, None)
    assert notes == ["agent risk/scorer: started", "agent risk/scorer: failed: Boom: scorer"]


def test_function_agent_requires_async_function_and_a_name() -> None:
    def sync(ctx: TaskContext, data: Any) -> Any:
        return data

    with pytest.raises(TypeError):
        FunctionAgent("sync", sync)
    with pytest.raises(ValueError, match="name"):
        add("", 1)


# --- sequence -------------------------------------------------------------------


async def test_sequence_threads_data_in_order() -> None:
    log: list[str] = []
    ctx, notes = local_context("risk")
    flow = sequence(add("a", 1, log), add("b", 10, log), add("c", 100, log))

    assert await flow(ctx, 0) == 111
    assert log == ["a", "b", "c"]
    assert flow.name == "sequence(a,b,c)"
    assert notes[0] == "agent risk/sequence(a,b,c): started"
    assert notes[-1] == "agent risk/sequence(a,b,c): done"
    assert "agent risk/b: done" in notes


async def test_sequence_stops_at_the_first_failure() -> None:
    log: list[str] = []
    ctx, _ = local_context()

    with pytest.raises(Boom):
        await sequence(add("a", 1, log), failing("b", log), add("c", 1, log))(ctx, 0)
    assert log == ["a", "b"]


def test_combinators_need_agents() -> None:
    for combinator in (sequence, parallel):
        with pytest.raises(ValueError, match="at least one"):
            combinator()


# --- parallel -------------------------------------------------------------------


async def test_parallel_runs_agents_concurrently() -> None:
    # Each agent waits for the other to have started: run one after the other,
    # this would never finish.
    started = {"left": asyncio.Event(), "right": asyncio.Event()}

    def waits_for(me: str, other: str) -> Agent:
        async def run(ctx: TaskContext, data: int) -> str:
            started[me].set()
            await started[other].wait()
            return me

        return FunctionAgent(me, run)

    ctx, _ = local_context()
    async with asyncio.timeout(5):
        result = await parallel(waits_for("left", "right"), waits_for("right", "left"))(ctx, 0)
    assert result == ["left", "right"]


async def test_parallel_results_keep_agent_order_and_merge() -> None:
    def after(name: str, delay: float) -> Agent:
        async def run(ctx: TaskContext, data: int) -> str:
            await asyncio.sleep(delay)
            return name

        return FunctionAgent(name, run)

    ctx, _ = local_context()
    flow = parallel(after("slow", 0.05), after("fast", 0), merge=lambda r: "+".join(r))

    assert await flow(ctx, 0) == "slow+fast"


async def test_parallel_failure_cancels_siblings_and_propagates_unwrapped() -> None:
    sibling_canceled = asyncio.Event()

    async def slow(ctx: TaskContext, data: Any) -> Any:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            sibling_canceled.set()
            raise

    ctx, _ = local_context()
    with pytest.raises(Boom):
        await parallel(FunctionAgent("slow", slow), failing("bad", []))(ctx, 0)
    assert sibling_canceled.is_set()


async def test_parallel_passes_escalation_through() -> None:
    ctx, _ = local_context()

    with pytest.raises(InputRequired, match="approve"):
        await parallel(add("a", 1), escalate("approve?"))(ctx, 0)


# --- conditional ----------------------------------------------------------------


async def test_conditional_picks_branches() -> None:
    log: list[str] = []
    ctx, _ = local_context()
    flow = conditional(lambda n: n > 10, add("big", 1000, log), add("small", 1, log))

    assert await flow(ctx, 50) == 1050
    assert await flow(ctx, 5) == 6
    assert log == ["big", "small"]


async def test_conditional_without_otherwise_passes_data_on() -> None:
    log: list[str] = []
    ctx, _ = local_context()

    assert await conditional(lambda n: False, add("then", 1, log))(ctx, 7) == 7
    assert log == []


async def test_conditional_accepts_async_predicates() -> None:
    async def is_even(n: int) -> bool:
        await asyncio.sleep(0)
        return n % 2 == 0

    ctx, _ = local_context()
    flow = conditional(is_even, add("even", 100), add("odd", 1))

    assert await flow(ctx, 2) == 102
    assert await flow(ctx, 3) == 4


# --- retry ----------------------------------------------------------------------


async def test_retry_succeeds_after_transient_failures() -> None:
    flaky = Flaky(failures=2)
    ctx, notes = local_context("risk")

    assert await retry(flaky, attempts=3, backoff=0)(ctx, "ok") == "ok"
    assert flaky.calls == 3
    retries = [n for n in notes if "retrying" in n]
    assert len(retries) == 2
    assert retries[0].startswith("agent risk/retry(flaky): attempt 1/3 failed (Boom: failure 1)")


async def test_retry_gives_up_after_attempts_with_the_last_error() -> None:
    flaky = Flaky(failures=10)
    ctx, _ = local_context()

    with pytest.raises(Boom, match="failure 4"):
        await retry(flaky, attempts=4, backoff=0)(ctx, None)
    assert flaky.calls == 4


async def test_retry_only_retries_listed_errors() -> None:
    flaky = Flaky(failures=1, exc=Other)
    ctx, _ = local_context()

    with pytest.raises(Other):
        await retry(flaky, attempts=5, backoff=0, retry_on=(Boom,))(ctx, None)
    assert flaky.calls == 1


async def test_retry_never_retries_escalation() -> None:
    calls: list[str] = []

    async def asks(ctx: TaskContext, data: Any) -> Any:
        calls.append("asked")
        ctx.require_input("approve?")

    ctx, _ = local_context()
    with pytest.raises(InputRequired):
        await retry(FunctionAgent("asks", asks), attempts=3, backoff=0)(ctx, None)
    assert calls == ["asked"]


async def test_retry_stops_when_the_pause_would_outlast_the_deadline() -> None:
    flaky = Flaky(failures=5)
    ctx, _ = local_context(deadline=timedelta(seconds=1))

    async with asyncio.timeout(0.5):  # proves it did not sleep the 10s backoff
        with pytest.raises(Boom, match="failure 1"):
            await retry(flaky, attempts=3, backoff=10)(ctx, None)
    assert flaky.calls == 1


def test_retry_backoff_is_exponential_capped_and_jittered() -> None:
    policy = retry(Flaky(0), attempts=10, backoff=0.1, max_backoff=0.5)
    assert isinstance(policy, Retry)

    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (8, 0.5)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter


@pytest.mark.parametrize(
    ("attempts", "backoff"), [(0, 0.1), (1, -0.1)], ids=["no-attempts", "negative"]
)
def test_retry_rejects_bad_settings(attempts: int, backoff: float) -> None:
    with pytest.raises(ValueError, match="retry"):
        retry(Flaky(0), attempts=attempts, backoff=backoff)


# --- fallback -------------------------------------------------------------------


async def test_fallback_tries_alternatives_in_order() -> None:
    log: list[str] = []
    ctx, notes = local_context("risk")
    flow = fallback(failing("model", log), failing("rules", log), add("default", 1, log))

    assert await flow(ctx, 0) == 1
    assert log == ["model", "rules", "default"]
    assert "agent risk/fallback(model,rules,default): model failed; trying rules" in notes


async def test_fallback_stops_at_the_first_success() -> None:
    log: list[str] = []
    ctx, _ = local_context()

    assert await fallback(add("primary", 1, log), add("backup", 2, log))(ctx, 0) == 1
    assert log == ["primary"]


async def test_fallback_raises_the_last_error_noting_earlier_ones() -> None:
    log: list[str] = []
    ctx, _ = local_context()

    with pytest.raises(Other) as caught:
        await fallback(failing("a", log), failing("b", log, Other("b broke")))(ctx, 0)
    assert log == ["a", "b"]
    assert caught.value.__notes__ == ["fallback: a failed first: Boom: a"]


async def test_fallback_lets_escalation_and_unlisted_errors_through() -> None:
    log: list[str] = []
    ctx, _ = local_context()

    with pytest.raises(InputRequired):
        await fallback(escalate("who?"), add("never", 1, log))(ctx, 0)
    with pytest.raises(Other):
        await fallback(failing("a", log, Other("x")), add("never", 1, log), on=(Boom,))(ctx, 0)
    assert log == ["a"]


# --- escalation and composition -------------------------------------------------


async def test_escalate_words_the_question_from_the_data() -> None:
    ctx, notes = local_context("risk")

    with pytest.raises(InputRequired) as caught:
        await escalate(lambda d: f"approve payment of {d['amount']}?")(ctx, {"amount": 9000})
    assert caught.value.question == "approve payment of 9000?"
    assert notes[-1] == "agent risk/escalate: needs input: approve payment of 9000?"


async def test_composed_workflow() -> None:
    log: list[str] = []
    ctx, notes = local_context("risk")
    flow = sequence(
        parallel(add("a", 1, log), add("b", 2, log), merge=sum),
        conditional(lambda n: n > 100, escalate("too big"), retry(add("c", 10, log))),
        fallback(failing("d", log), add("e", 100, log)),
        name="pipeline",
    )

    assert await flow(ctx, 1) == 115  # (1+1)+(1+2)=5, +10, +100
    assert sorted(log[:2]) == ["a", "b"]
    assert log[2:] == ["c", "d", "e"]
    assert notes[0] == "agent risk/pipeline: started"
    assert notes[-1] == "agent risk/pipeline: done"
