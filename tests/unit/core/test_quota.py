from __future__ import annotations

import pytest

from gateway.core.quota import QuotaBook, Rate
from gateway.errors import QuotaExceeded


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_sustained_rate() -> None:
    clock = ManualClock()
    book = QuotaBook(per_caller={"support": Rate(per_second=2, burst=3)}, per_pair={}, clock=clock)
    for _ in range(3):
        book.acquire("support", "risk")
    with pytest.raises(QuotaExceeded, match="caller support") as info:
        book.acquire("support", "risk")
    assert info.value.retry_after == pytest.approx(0.5)
    clock.now += 0.5
    book.acquire("support", "risk")
    with pytest.raises(QuotaExceeded):
        book.acquire("support", "risk")


def test_pair_limit_applies_only_to_that_pair() -> None:
    clock = ManualClock()
    book = QuotaBook(per_caller={}, per_pair={("support", "finance"): Rate(1, 1)}, clock=clock)
    book.acquire("support", "finance")
    with pytest.raises(QuotaExceeded, match="support -> finance"):
        book.acquire("support", "finance")
    for _ in range(10):
        book.acquire("support", "risk")  # unlimited
        book.acquire("risk", "finance")


def test_a_refused_call_takes_no_token_from_other_buckets() -> None:
    clock = ManualClock()
    book = QuotaBook(
        per_caller={"support": Rate(1, 2)},
        per_pair={("support", "finance"): Rate(1, 1)},
        clock=clock,
    )
    book.acquire("support", "finance")
    with pytest.raises(QuotaExceeded):
        book.acquire("support", "finance")  # the pair is empty; the caller bucket keeps its token
    book.acquire("support", "risk")  # uses the caller bucket's second token
    with pytest.raises(QuotaExceeded, match="caller support"):
        book.acquire("support", "risk")


def test_default_limit_covers_callers_without_their_own() -> None:
    book = QuotaBook(
        per_caller={"vip": Rate(100, 100)},
        per_pair={},
        default_per_caller=Rate(1, 1),
        clock=ManualClock(),
    )
    book.acquire("anyone", "risk")
    with pytest.raises(QuotaExceeded):
        book.acquire("anyone", "risk")
    for _ in range(50):
        book.acquire("vip", "risk")
