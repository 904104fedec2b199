"""Idempotency keys: the same (caller, key) never runs twice; a retry gets the first outcome.

The first call with a key claims it (durably, before anything is forwarded). When the
call ends, its outcome is stored with the key until the key expires. A later call with
the same key and the same request gets that outcome back without running again; with a
different request it is refused (INVALID_ARGUMENT); while the first call still runs it
is refused as retryable (UNAVAILABLE). A call refused before it was forwarded releases
its claim, so it can simply be sent again.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from gateway.core.clock import Clock, utcnow
from gateway.core.invocation import Invocation, Outcome
from gateway.core.models import CapabilityTarget, Payload, TaskUpdate
from gateway.core.task import TaskInfo
from gateway.errors import DomainUnavailable, InvalidRequest

T = TypeVar("T")


class ClaimState(enum.StrEnum):
    """Where a key stands."""

    PENDING = "pending"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """What a finished call with a key answered."""

    task_id: str
    trace_id: str
    target: CapabilityTarget
    final: TaskUpdate


@dataclass(frozen=True, slots=True)
class Claim:
    """The result of claiming a key: new, or what an earlier call with it left."""

    new: bool
    request_hash: str = ""
    state: ClaimState = ClaimState.PENDING
    outcome: StoredOutcome | None = None


class IdempotencyStore(Protocol):
    """Durable map (caller, key) -> claim and outcome, shared by every replica."""

    def claim(
        self, *, caller: str, key: str, request_hash: str, now: datetime, ttl: timedelta
    ) -> Claim:
        """Claims an unused (or expired) key atomically, or returns the existing claim."""
        ...

    def complete(self, *, caller: str, key: str, outcome: StoredOutcome) -> None:
        """Stores the outcome of the call that claimed the key."""
        ...

    def release(self, *, caller: str, key: str) -> None:
        """Drops a pending claim of a call that was refused before it was forwarded."""
        ...

    def purge_expired(self, *, now: datetime) -> int:
        """Deletes expired keys; returns how many."""
        ...


class Replay(Exception):
    """Raised by the idempotency step: answer with a stored outcome instead of running."""

    def __init__(self, outcome: StoredOutcome) -> None:
        super().__init__(outcome.task_id)
        self.outcome = outcome


def request_hash(invocation: Invocation) -> str:
    """SHA-256 over what makes two requests the same: target and input."""
    digest = hashlib.sha256()
    digest.update(str(invocation.target).encode())
    digest.update(b"\0")
    digest.update(_payload_bytes(invocation.input))
    return digest.hexdigest()


def _payload_bytes(payload: Payload) -> bytes:
    if payload.json is not None:
        return json.dumps(payload.json, sort_keys=True, separators=(",", ":")).encode()
    return payload.content_type.encode() + b"\0" + (payload.data or b"")


class IdempotencyStep:
    """Claims the caller's idempotency key, or replays what the key already answered."""

    per_target = False  # a fallback serves the same request under the same key

    def __init__(
        self,
        store: IdempotencyStore,
        *,
        ttl: timedelta,
        executor: Executor | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._executor = executor
        self._clock = clock

    async def _run(self, fn: Callable[[], T]) -> T:
        # Store calls block (SQLAlchemy); keep them off the event loop.
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def before(self, invocation: Invocation) -> None:
        key = invocation.idempotency_key
        if not key:
            return
        caller = invocation.caller.domain
        fingerprint = request_hash(invocation)
        now = self._clock()
        claim = await self._run(
            lambda: self._store.claim(
                caller=caller, key=key, request_hash=fingerprint, now=now, ttl=self._ttl
            )
        )
        if claim.new:
            return
        if claim.request_hash != fingerprint:
            raise InvalidRequest(
                f"idempotency key {key!r} was used for a different request; use a new key"
            )
        if claim.state is ClaimState.PENDING or claim.outcome is None:
            raise DomainUnavailable(
                f"a call with idempotency key {key!r} is still running; retry later"
            )
        raise Replay(claim.outcome)

    async def after(self, invocation: Invocation, outcome: Outcome) -> None:
        key = invocation.idempotency_key
        if not key:
            return
        caller = invocation.caller.domain
        task = invocation.task
        if outcome.final is not None and task is not None:
            stored = StoredOutcome(task.task_id, task.trace_id, task.target, outcome.final)
            await self._run(lambda: self._store.complete(caller=caller, key=key, outcome=stored))
        elif not invocation.dispatched:
            # Refused before anything was forwarded: the key may be used again.
            await self._run(lambda: self._store.release(caller=caller, key=key))
        # Forwarded and then failed (the domain may have acted): the claim stays
        # pending until it expires, so the same key cannot run the work twice.


def replayed_task(invocation: Invocation, outcome: StoredOutcome) -> TaskInfo:
    """The task a replay answers with: the first call's ids and target."""
    return TaskInfo(
        task_id=outcome.task_id,
        trace_id=outcome.trace_id,
        caller=invocation.caller,
        target=outcome.target,
        idempotency_key=invocation.idempotency_key,
    )
