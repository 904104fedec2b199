"""Engines, transactions and an unreachable database, on real SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.errors import StoreUnavailable
from gateway.store.database import migrate, open_engine, run_transaction
from gateway.store.registry_store import SqlRegistryStore


def test_a_new_file_switches_to_wal_once_another_connection_lets_go(tmp_path: Path) -> None:
    # Replicas opening a new file at once: SQLite refuses the switch to WAL at once
    # (no busy timeout) while another connection holds the write lock.
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.2, other.execute, ("COMMIT",))  # the other replica's work
    release.start()
    engine = open_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    finally:
        release.join()
        other.close()
        engine.dispose()


def test_sqlite_connections_are_durable_and_check_foreign_keys(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()

    # synchronous: 2 is FULL.
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


def test_open_engine_creates_the_sqlite_folder(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "fedgate.db"
    engine = open_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        engine.dispose()

    assert path.is_file()


def test_sqlite_folder_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(StoreUnavailable, match="cannot create the folder"):
        open_engine(f"sqlite:///{blocker / 'state' / 'fedgate.db'}")


def test_sqlite_file_that_is_a_folder_is_unavailable(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}")
    store = SqlRegistryStore(engine)
    try:
        with pytest.raises(StoreUnavailable, match="unable to open database file"):
            store.list_domains()
        with pytest.raises(StoreUnavailable):
            migrate(engine)
    finally:
        engine.dispose()


def test_unreachable_postgres_is_unavailable_without_leaking_the_password() -> None:
    engine = open_engine("postgresql://fedgate:s3cret-pw@127.0.0.1:1/fedgate")
    store = SqlRegistryStore(engine)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.get_domain("finance")
        with pytest.raises(StoreUnavailable):
            migrate(engine)
    finally:
        engine.dispose()

    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "s3cret-pw" not in message
    assert caught.value.retryable


@pytest.mark.postgres
def test_store_recovers_when_postgres_drops_its_connections(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    store = SqlRegistryStore(engine)
    admin = open_engine(postgres_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            pid = conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
        with admin.begin() as conn:
            conn.execute(sa.select(sa.func.pg_terminate_backend(pid)))

        # The pooled connection is dead; the pre-ping replaces it.
        assert store.list_domains() == []
    finally:
        admin.dispose()
        engine.dispose()


class _SerializationFailure(Exception):
    sqlstate = "40001"


def test_run_transaction_runs_a_conflicted_transaction_again(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    attempts: list[int] = []

    def work(conn: Connection) -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise sa.exc.OperationalError("UPDATE …", {}, _SerializationFailure("conflict"))
        return int(conn.execute(sa.select(sa.literal(7))).scalar_one())

    try:
        assert run_transaction(engine, work) == 7
    finally:
        engine.dispose()
    assert len(attempts) == 3


def test_run_transaction_gives_up_on_endless_conflicts(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)

    def work(conn: Connection) -> None:
        raise sa.exc.OperationalError("UPDATE …", {}, _SerializationFailure("conflict"))

    try:
        with pytest.raises(StoreUnavailable, match="conflict"):
            run_transaction(engine, work)
    finally:
        engine.dispose()


def test_run_transaction_rolls_back_on_error(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    migrate(engine)

    def work(conn: Connection) -> None:
        conn.execute(
            sa.text(
                "INSERT INTO domains (name, owner, registered_at, updated_at)"
                " VALUES ('finance', 'x', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            run_transaction(engine, work)
        assert SqlRegistryStore(engine).list_domains() == []
    finally:
        engine.dispose()
