"""Fixtures for the audit trail: a migrated engine per backend, a store, a signer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_log import Checkpointer
from gateway.core.signed_note import NoteSigner
from gateway.store.audit_store import SqlAuditStore
from gateway.store.database import migrate, open_engine

ORIGIN = "fedgate.test/audit"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = open_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> SqlAuditStore:
    return SqlAuditStore(engine)


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture
def checkpointer(signer: NoteSigner) -> Checkpointer:
    return Checkpointer(ORIGIN, signer, every_records=10, every_seconds=3600)


def event(i: int, **overrides: object) -> AuditEvent:
    """A task event numbered `i`, between a few domains, one second apart."""
    fields: dict[str, object] = {
        "type": EventType.TASK_REQUESTED if i % 2 == 0 else EventType.TASK_FINISHED,
        "actor": ["support", "finance", "risk"][i % 3],
        "source_domain": ["support", "finance", "risk"][i % 3],
        "target_domain": ["risk", "finance"][i % 2],
        "capability": "score",
        "trace_id": f"trace-{i // 4}",
        "task_id": f"task-{i}",
        "decision": "allow" if i % 5 else "deny",
        "outcome": "" if i % 2 == 0 else "completed",
        "attributes": {"i": i},
        "caller_time": T0 + timedelta(seconds=i),
    }
    fields.update(overrides)
    return AuditEvent(**fields)  # type: ignore[arg-type]
