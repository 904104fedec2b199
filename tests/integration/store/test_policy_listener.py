"""PostgreSQL LISTEN/NOTIFY for policy changes, and the sync that acts on it."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domains.sdk.testing import eventually
from gateway.core.decision import Action
from gateway.core.models import Principal
from gateway.core.policy import parse_rule
from gateway.core.policy.sync import PolicySync, open_policy
from gateway.store.database import migrate, open_engine
from gateway.store.policy_listener import APPLICATION_NAME, PgPolicyListener, libpq_url
from gateway.store.policy_store import SqlPolicyStore

MODEL = (Path(__file__).resolve().parents[3] / "policies" / "model.conf").read_text()
NOW = datetime(2026, 11, 24, tzinfo=UTC)
RULE = parse_rule("p, cli, finance, issue-refund, invoke")
CLI = Principal("cli")


def test_libpq_url_drops_the_driver_and_adds_a_connect_timeout() -> None:
    url = libpq_url("postgresql+psycopg://u:pw@h:5/db?options=-csearch_path%3Dx")
    assert url.startswith("postgresql://u:pw@h:5/db?")
    assert "connect_timeout=10" in url
    assert f"application_name={APPLICATION_NAME}" in url
    assert "options=-csearch_path" in url


@pytest.mark.postgres
def test_a_committed_change_wakes_the_listener(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    migrate(engine)
    store = SqlPolicyStore(engine)
    woken = threading.Event()
    listener = PgPolicyListener(postgres_url)
    listener.start(woken.set)
    try:
        assert listener.connected.wait(10)
        assert woken.wait(5)  # reported once on connect: it may have missed changes
        woken.clear()
        started = time.monotonic()
        store.add([RULE], actor="admin", now=NOW)
        assert woken.wait(5)
        assert time.monotonic() - started < 1.0
    finally:
        listener.stop()
        engine.dispose()
    assert not listener.connected.is_set()


@pytest.mark.postgres
def test_the_listener_reconnects_after_losing_its_connection(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    migrate(engine)
    woken = threading.Event()
    listener = PgPolicyListener(postgres_url)
    listener.start(woken.set)
    try:
        assert listener.connected.wait(10)
        woken.clear()
        with engine.begin() as conn:  # the server drops every LISTEN connection
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": APPLICATION_NAME},
            )
        assert woken.wait(10)  # reconnected, and reported a possible miss
        assert listener.connected.wait(10)
    finally:
        listener.stop()
        engine.dispose()


async def _synced_pair(url: str) -> tuple[Engine, SqlPolicyStore, PolicySync, PolicySync]:
    engine = open_engine(url)
    migrate(engine)
    store = SqlPolicyStore(engine)
    first = open_policy(MODEL, store, [])
    second = open_policy(MODEL, store, [])
    return (
        engine,
        store,
        PolicySync(first, store, poll_interval=0.05),
        PolicySync(second, store, poll_interval=0.05),
    )


async def test_replicas_poll_the_version_and_install_changes(db_url: str) -> None:
    engine, store, first, second = await _synced_pair(db_url)
    task = asyncio.create_task(second.run())
    try:
        assert not second.policy.decide(CLI, "finance", "issue-refund", Action.INVOKE).allowed
        await asyncio.to_thread(store.add, [RULE], actor="admin", now=NOW)

        async def allowed() -> bool:
            return second.policy.decide(CLI, "finance", "issue-refund", Action.INVOKE).allowed

        await eventually(allowed, timeout=5)
        assert second.policy.version == 2
        # A refresh that finds the same version does nothing.
        assert await first.refresh() == 2
        reloads = first.reloads
        assert await first.refresh() == 2
        assert first.reloads == reloads
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        engine.dispose()


async def test_a_store_outage_keeps_the_live_policy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine, store, first, _ = await _synced_pair(url)
    await asyncio.to_thread(store.add, [RULE], actor="admin", now=NOW)
    await first.refresh()
    broken = SqlPolicyStore(open_engine(f"sqlite:///{tmp_path / 'missing' / 'x' / 'p.db'}"))
    first.store = broken
    task = asyncio.create_task(first.run())
    try:
        await asyncio.sleep(0.2)  # several failed polls (logged), the policy stays
        assert first.policy.version == 2
        assert first.policy.decide(CLI, "finance", "issue-refund", Action.INVOKE).allowed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        engine.dispose()
