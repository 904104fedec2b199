"""A context space on a real SQLite or PostgreSQL store, the real default policy and a
sink that keeps every audit event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.content_hash import ContentHasher
from gateway.core.context.access import ContextAccess
from gateway.core.context.grant import GrantSigner
from gateway.core.context.space import ContextLimits, ContextSpace
from gateway.core.policy import CasbinPolicy
from gateway.store.context_store import SqlContextStore

POLICIES = Path(__file__).resolve().parents[3] / "policies"


class KeepingSink:
    """Keeps every event it is given, in order."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, events: list[AuditEvent]) -> Sequence[object]:
        self.events.extend(events)
        return []

    def of(self, kind: EventType) -> list[AuditEvent]:
        return [e for e in self.events if e.type is kind]


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def sink() -> KeepingSink:
    return KeepingSink()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def default_policy() -> CasbinPolicy:
    return CasbinPolicy.from_files(
        POLICIES / "model.conf", POLICIES / "policy.csv", POLICIES / "flows.csv"
    )


@pytest.fixture
def space(
    db_engine: Engine, default_policy: CasbinPolicy, sink: KeepingSink, clock: Clock
) -> ContextSpace:
    return ContextSpace(
        SqlContextStore(db_engine),
        ContextAccess(default_policy, ContentHasher(b"c" * 32)),
        sink,
        GrantSigner(b"g" * 32),
        limits=ContextLimits(default_ttl=60.0, max_ttl=3600.0, watch_poll_interval=0.05),
        clock=clock,
    )
