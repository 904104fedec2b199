"""The idempotency key store on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from gateway.core.idempotency import ClaimState, StoredOutcome
from gateway.core.models import CapabilityTarget, Payload, TaskError, TaskState, TaskUpdate
from gateway.store.idempotency_store import SqlIdempotencyStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=1)


def test_first_claim_wins_and_later_claims_see_it(db_engine: Engine) -> None:
    store = SqlIdempotencyStore(db_engine)
    first = store.claim(caller="support", key="k", request_hash="h1", now=T0, ttl=TTL)
    second = store.claim(caller="support", key="k", request_hash="h2", now=T0, ttl=TTL)
    assert first.new
    assert not second.new
    assert second.request_hash == "h1"
    assert second.state is ClaimState.PENDING
    assert store.claim(caller="risk", key="k", request_hash="h1", now=T0, ttl=TTL).new


def test_completed_outcome_round_trips(db_engine: Engine) -> None:
    store = SqlIdempotencyStore(db_engine)
    store.claim(caller="support", key="k", request_hash="h", now=T0, ttl=TTL)
    final = TaskUpdate(
        state=TaskState.COMPLETED,
        message="done",
        output=Payload(data=b'{"a":1}', content_type="application/json"),
        final=True,
    )
    failed = TaskUpdate(
        state=TaskState.FAILED, error=TaskError("handler_error", "boom", False), final=True
    )
    target = CapabilityTarget("finance", "issue-refund", "1.0.0")
    store.complete(caller="support", key="k", outcome=StoredOutcome("t1", "tr", target, final))
    claim = store.claim(caller="support", key="k", request_hash="h", now=T0, ttl=TTL)
    assert claim.state is ClaimState.DONE
    assert claim.outcome == StoredOutcome("t1", "tr", target, final)
    store.claim(caller="support", key="f", request_hash="h", now=T0, ttl=TTL)
    store.complete(caller="support", key="f", outcome=StoredOutcome("t2", "tr", target, failed))
    again = store.claim(caller="support", key="f", request_hash="h", now=T0, ttl=TTL)
    assert again.outcome is not None
    assert again.outcome.final == failed


def test_release_frees_only_pending_keys_and_expiry_frees_any(db_engine: Engine) -> None:
    store = SqlIdempotencyStore(db_engine)
    store.claim(caller="c", key="pending", request_hash="h", now=T0, ttl=TTL)
    store.release(caller="c", key="pending")
    assert store.claim(caller="c", key="pending", request_hash="h2", now=T0, ttl=TTL).new
    later = T0 + TTL
    assert store.claim(caller="c", key="pending", request_hash="h3", now=later, ttl=TTL).new
    assert store.purge_expired(now=later + TTL) == 1


def test_concurrent_claims_of_one_key_have_exactly_one_winner(db_engine: Engine) -> None:
    store = SqlIdempotencyStore(db_engine)

    def claim(i: int) -> bool:
        return store.claim(caller="c", key="race", request_hash=f"h{i}", now=T0, ttl=TTL).new

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(claim, range(16)))
    assert wins.count(True) == 1
