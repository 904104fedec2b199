"""Engines, transactions and schema migrations for the gateway's SQL stores.

One place turns "the database cannot be reached" into `StoreUnavailable`:
`unavailable_on_error`. Stores run each operation through `run_transaction`,
which opens one transaction, retries transient write conflicts and applies
that translation.

SQLite (the default) and PostgreSQL (several replicas) are supported.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from gateway.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""The Alembic script folder shipped inside the package."""

POSTGRES_CONNECT_TIMEOUT = 10
"""Seconds to wait for a PostgreSQL connection unless the URL says otherwise."""

_SQLITE_BUSY_TIMEOUT = 5.0
"""Seconds a SQLite connection waits for another's lock before giving up."""

_READ_ONLY = "fedgate_read_only"
# Execution option marking a connection whose transactions only read; on SQLite
# they start with a plain (deferred) BEGIN instead of BEGIN IMMEDIATE.

_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
# serialization_failure and deadlock_detected: PostgreSQL rolled the transaction
# back and it is safe to run it again.
_TRANSIENT_RETRIES = 5

# `migrate` takes this transaction-scoped advisory lock on PostgreSQL so that
# replicas starting together do not run the same migration twice.
_MIGRATION_LOCK_KEY = 0x6665_6467_6174_65  # "fedgate"


def open_engine(url: str) -> Engine:
    """Creates an engine for a SQLite or PostgreSQL URL, configured for the gateway.

    SQLite: the database file's folder is created; every connection uses WAL,
    `synchronous=FULL` (a commit survives power loss), foreign keys and a 5 s
    busy timeout; writing transactions start with `BEGIN IMMEDIATE` so that
    concurrent writers queue on the busy timeout instead of failing.
    PostgreSQL: `postgresql://` URLs without a driver use psycopg 3.

    Args:
        url: A SQLAlchemy database URL.

    Returns:
        The engine; no connection is made yet.

    Raises:
        StoreUnavailable: The SQLite file's folder cannot be created.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _open_sqlite(parsed)
    if parsed.get_backend_name() == "postgresql":
        return _open_postgres(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True)


def _open_sqlite(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(
                f"cannot create the folder of the SQLite database {database}: {error}"
            ) from error
    # No pre-ping: a connection to a local file does not go stale the way a network
    # connection does, and the ping would cost a statement on every transaction.
    engine = sa.create_engine(url)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver (it skips BEGIN before SELECT, so
    # reads would not see one snapshot); `_begin_sqlite_transaction` issues it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # The busy timeout goes first: switching a new file to WAL needs a lock
        # that another connection may be holding at that moment.
        cursor.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_TIMEOUT * 1000)}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """`PRAGMA journal_mode=WAL`, retried while another connection holds the lock it needs.

    Only a new file actually switches (the mode is persistent), and it needs an
    exclusive lock. When replicas open a new file at once, SQLite may answer "database
    is locked" at once instead of waiting out the busy timeout (waiting could
    deadlock), so this waits in short steps, up to the busy timeout in all.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _begin_sqlite_transaction(connection: Connection) -> None:
    # A deferred transaction that reads and then writes cannot wait for the
    # write lock (SQLITE_BUSY at once), so writers take it up front.
    # Through the driver: SQLAlchemy's statement execution costs about as much as
    # the rest of a lone audit record's transaction, fsync aside.
    read_only = connection.get_execution_options().get(_READ_ONLY, False)
    with driver_cursor(connection) as cursor:  # "database is locked" past the busy timeout
        cursor.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextmanager
def driver_cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the DBAPI driver under `conn`, for statements on a hot path.

    SQLAlchemy's statement execution costs about 40 µs a statement, more than a
    small statement itself on SQLite. Driver errors are turned into SQLAlchemy's,
    so callers handle them as usual (a unique violation is an `IntegrityError`, a
    locked or lost database an `OperationalError`, which `unavailable_on_error`
    turns into `StoreUnavailable`).
    """
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except dbapi_error as error:
        raise exc.DBAPIError.instance(
            None, None, error, dbapi_error, dialect=conn.dialect
        ) from error
    finally:
        cursor.close()


def _open_postgres(url: URL) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


@contextmanager
def unavailable_on_error(engine: Engine) -> Iterator[None]:
    """Turns errors meaning "the database cannot be reached" into `StoreUnavailable`.

    Those are operational and interface errors of the driver, connections found
    broken, and an exhausted connection pool. Other database errors (constraint
    violations, bad SQL) are bugs and pass through unchanged. Messages name the
    database without its password.

    Args:
        engine: The engine whose database is being used.

    Raises:
        StoreUnavailable: The database could not be reached or used.
    """
    try:
        yield
    except exc.DBAPIError as error:
        if not (
            isinstance(error, exc.OperationalError | exc.InterfaceError)
            or error.connection_invalidated
        ):
            raise
        raise StoreUnavailable(_unavailable_message(engine, error.orig)) from error
    except exc.TimeoutError as error:
        raise StoreUnavailable(_unavailable_message(engine, error)) from error


def _unavailable_message(engine: Engine, cause: BaseException | None) -> str:
    where = engine.url.render_as_string(hide_password=True)
    reason = (str(cause).strip().splitlines() or [""])[0] if cause is not None else ""
    if engine.url.password:
        reason = reason.replace(str(engine.url.password), "***")
    return f"the database {where} is unavailable: {reason or type(cause).__name__}"


def run_transaction(
    engine: Engine,
    work: Callable[[Connection], T],
    *,
    read_only: bool = False,
    held: HeldConnection | None = None,
) -> T:
    """Runs `work` in one transaction and commits it.

    A transaction PostgreSQL aborted for a write conflict (serialization failure,
    deadlock) is run again, a few times. Read-only transactions see one snapshot
    of the database (REPEATABLE READ on PostgreSQL, a deferred BEGIN on SQLite).

    Args:
        engine: An engine from `open_engine`.
        work: Does the statements on the connection; may run more than once.
        read_only: True when `work` only reads.
        held: Run on this kept-open connection instead of one from the pool.

    Returns:
        What `work` returned.

    Raises:
        StoreUnavailable: The database could not be reached or used.
    """
    options: dict[str, Any] = {_READ_ONLY: read_only}
    if read_only and engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    with unavailable_on_error(engine):
        for attempt in range(1, _TRANSIENT_RETRIES + 1):
            try:
                if held is not None:
                    return held.transact(work)
                with engine.connect().execution_options(**options) as conn, conn.begin():
                    return work(conn)
            except exc.DBAPIError as error:
                sqlstate = getattr(error.orig, "sqlstate", None)
                if sqlstate not in _TRANSIENT_SQLSTATES or attempt == _TRANSIENT_RETRIES:
                    raise
                log.info("transaction conflict (%s), running it again", sqlstate)
    raise AssertionError("unreachable: the last attempt returns or raises")


class HeldConnection:
    """One connection kept open across the writing transactions of a single writer.

    A group-commit writer runs one small transaction per batch; checking a pooled
    connection out and back in (with its reset) around each cost about as much as
    the transaction's own statements. A connection that failed is dropped, so the
    next transaction opens a fresh one and a database that comes back is used again.
    Transactions on it are serialized, so any thread may use it.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def transact(self, work: Callable[[Connection], T]) -> T:
        """Runs `work` in one writing transaction on the held connection."""
        with self._lock:
            conn = self._connection
            if conn is None or conn.closed or conn.invalidated:
                conn = self._connection = self._engine.connect()
            try:
                with conn.begin():
                    return work(conn)
            except exc.DBAPIError as error:
                if error.connection_invalidated or isinstance(
                    error, exc.OperationalError | exc.InterfaceError
                ):
                    self._drop()
                raise

    def close(self) -> None:
        """Returns the connection; a later transaction opens a new one."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            with contextlib.suppress(exc.SQLAlchemyError):
                conn.close()


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the gateway's migrations, built without an ini file.

    Developers use it with `alembic.command`, for example
    `command.revision(alembic_config(url), autogenerate=True, message="...")`;
    see `gateway/store/migrations/README`.

    Args:
        url: The database to migrate when no connection is passed in
            `config.attributes["connection"]`.

    Returns:
        The configuration.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Stated explicitly so Alembic does not warn about the legacy default.
    config.set_main_option("path_separator", "os")
    # Revision ids are `NNNN_<slug>` and name their file (see migrations/README).
    config.set_main_option("file_template", "%%(rev)s")
    if url is not None:
        # Kept out of the ini-style options, where "%" in a URL would be interpolation.
        config.attributes["url"] = url
    return config


def migrate(engine: Engine) -> None:
    """Upgrades the database schema to the newest revision (`alembic upgrade head`).

    Safe to call at every start-up and from several replicas at once: on
    PostgreSQL an advisory lock lets one migrate while the others wait, and on
    SQLite the migration holds the write lock. On SQLite, a migration that ran
    is checkpointed and the WAL file truncated: a migration that copies a table
    would otherwise leave a WAL file as large as that table for good.

    Args:
        engine: An engine from `open_engine`.

    Raises:
        StoreUnavailable: The database could not be reached.
    """
    with unavailable_on_error(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
        before = MigrationContext.configure(conn).get_current_revision()
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        migrated = MigrationContext.configure(conn).get_current_revision() != before
    if migrated and engine.dialect.name == "sqlite":
        _truncate_wal(engine)


def _truncate_wal(engine: Engine) -> None:
    # Outside any transaction (the driver runs in autocommit, see
    # `_configure_sqlite_connection`). A reader in another process can keep it from
    # finishing: it then waits out the busy timeout and reports "busy" without an
    # error, and SQLite's automatic checkpoints copy the rest later.
    with unavailable_on_error(engine):
        connection = engine.raw_connection()
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            connection.close()
