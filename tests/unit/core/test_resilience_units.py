from __future__ import annotations

import pytest

from gateway.core.balancer import Balancer
from gateway.core.circuit_breaker import BreakerBoard, BreakerPolicy, BreakerState, CircuitBreaker
from gateway.core.endpoint_health import EjectionPolicy, EndpointHealth
from gateway.core.retry_policy import RetryPolicy


class ManualClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


POLICY = BreakerPolicy(window=10, min_calls=4, failure_ratio=0.5, cooldown=5.0)


def test_breaker_waits_for_enough_calls_before_opening() -> None:
    breaker = CircuitBreaker(POLICY, ManualClock())
    for _ in range(3):
        assert breaker.allow()
        breaker.record(False)
    assert breaker.state is BreakerState.CLOSED  # 3 outcomes < min_calls, however bad
    breaker.record(True)
    assert breaker.state is BreakerState.OPEN  # 3 of 4 failed
    assert not breaker.allow()


def test_breaker_opens_when_the_failure_ratio_is_reached() -> None:
    breaker = CircuitBreaker(POLICY, ManualClock())
    for success in (True, True, True, False, False):
        breaker.record(success)
    assert breaker.state is BreakerState.CLOSED  # 2 of 5 = 0.4
    breaker.record(False)
    assert breaker.state is BreakerState.OPEN  # 3 of 6 = 0.5


def test_open_breaker_half_opens_after_cooldown_and_admits_one_trial() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(POLICY, clock)
    for _ in range(4):
        breaker.record(False)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == pytest.approx(5.0)
    clock.now += 5.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # one trial at a time
    breaker.record(True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_failed_trial_opens_the_breaker_again() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(POLICY, clock)
    for _ in range(4):
        breaker.record(False)
    clock.now += 5.0
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == pytest.approx(5.0)


def test_breakers_are_per_caller_and_endpoint() -> None:
    board = BreakerBoard(POLICY, ManualClock())
    for _ in range(4):
        board.get("support", "a:1").record(False)
    assert board.get("support", "a:1").state is BreakerState.OPEN
    assert board.get("finance", "a:1").state is BreakerState.CLOSED
    assert board.get("support", "b:1").state is BreakerState.CLOSED
    board.forget("a:1")
    assert board.get("support", "a:1").state is BreakerState.CLOSED


def test_endpoint_is_ejected_after_consecutive_failures_and_back_after_a_good_probe() -> None:
    health = EndpointHealth(EjectionPolicy(eject_after=3))
    health.record_call("a:1", False)
    health.record_call("a:1", False)
    health.record_call("a:1", True)  # a success resets the run
    health.record_call("a:1", False)
    health.record_call("a:1", False)
    assert health.healthy("a:1")
    health.record_call("a:1", False)
    assert not health.healthy("a:1")
    assert health.ejected() == {"a:1"}
    health.record_probe("a:1", serving=True)
    assert health.healthy("a:1")
    health.record_probe("b:1", serving=False)
    assert not health.healthy("b:1")


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10])
def test_backoff_is_jittered_below_an_exponential_cap(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=5, base_backoff=0.1, max_backoff=0.5)
    cap = min(0.5, 0.1 * 2 ** (attempt - 1))
    assert policy.backoff(attempt, rand=lambda: 1.0) == pytest.approx(cap)
    assert policy.backoff(attempt, rand=lambda: 0.0) == 0.0


def test_balancer_order_puts_idle_endpoints_first() -> None:
    balancer = Balancer()
    with balancer.track("a:1"):
        assert balancer.order(["a:1", "b:1", "c:1"])[-1] == "a:1"
