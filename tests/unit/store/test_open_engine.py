"""open_engine picks drivers and options; database errors become StoreUnavailable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.errors import StoreUnavailable
from gateway.store.database import POSTGRES_CONNECT_TIMEOUT, open_engine, unavailable_on_error


@pytest.fixture
def pg_engine() -> Iterator[sa.Engine]:
    # create_engine does not connect, so no server is needed.
    engine = open_engine("postgresql://fedgate:s3cret-pw@db.internal:5432/fedgate")
    yield engine
    engine.dispose()


class _NotConnecting(Exception):
    pass


def _connect_params(engine: sa.Engine) -> dict[str, Any]:
    """The keyword arguments the engine would pass to the driver's connect()."""
    captured: dict[str, Any] = {}

    def capture(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        captured.update(params)
        raise _NotConnecting

    sa.event.listen(engine, "do_connect", capture)
    with pytest.raises(_NotConnecting):
        engine.connect()
    return captured


def test_postgres_without_a_driver_uses_psycopg3(pg_engine: sa.Engine) -> None:
    assert pg_engine.url.drivername == "postgresql+psycopg"
    assert pg_engine.dialect.driver == "psycopg"


def test_postgres_with_a_driver_keeps_it() -> None:
    engine = open_engine("postgresql+psycopg://u@h/db")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()


def test_postgres_connect_timeout_is_bounded_by_default(pg_engine: sa.Engine) -> None:
    assert _connect_params(pg_engine)["connect_timeout"] == POSTGRES_CONNECT_TIMEOUT


def test_postgres_connect_timeout_in_the_url_wins() -> None:
    engine = open_engine("postgresql://u@h/db?connect_timeout=3")
    try:
        assert _connect_params(engine)["connect_timeout"] == "3"
    finally:
        engine.dispose()


def test_operational_errors_become_store_unavailable_without_password(
    pg_engine: sa.Engine,
) -> None:
    cause = Exception("connection failed: password s3cret-pw rejected\nsecond line")

    with pytest.raises(StoreUnavailable) as caught, unavailable_on_error(pg_engine):
        raise sa.exc.OperationalError("SELECT 1", {}, cause)

    message = str(caught.value)
    assert "s3cret-pw" not in message
    assert "db.internal:5432/fedgate" in message
    assert "second line" not in message
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)


def test_invalidated_connections_and_pool_timeouts_become_store_unavailable(
    pg_engine: sa.Engine,
) -> None:
    with pytest.raises(StoreUnavailable), unavailable_on_error(pg_engine):
        raise sa.exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    with pytest.raises(StoreUnavailable, match="QueuePool"), unavailable_on_error(pg_engine):
        raise sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")


def test_other_database_errors_pass_through(pg_engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), unavailable_on_error(pg_engine):
        raise sa.exc.IntegrityError("INSERT …", {}, Exception("duplicate key"))
