"""Fixtures shared by the whole test tree: databases.

PostgreSQL tests use the server at `FEDGATE_TEST_POSTGRES_URL` (default: the
`test` database on 127.0.0.1:5432 as `postgres`), each test in a fresh schema
that is dropped afterwards, so tests can run in parallel. An unreachable server
fails the test: CI starts PostgreSQL, so a skip would hide a broken setup.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from gateway.store.database import migrate, open_engine

POSTGRES_URL_ENV = "FEDGATE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL for a file (not yet created) in a folder of its own."""
    return f"sqlite:///{tmp_path / 'state' / 'fedgate.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh, empty schema."""
    base = make_url(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:8]}"
    admin = open_engine(base.render_as_string(hide_password=False))
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {base.render_as_string(hide_password=True)} is unreachable "
            f"({str(error.orig).strip()}); start it or set {POSTGRES_URL_ENV}",
            pytrace=False,
        )
    # libpq's `options` sets search_path per connection, so unqualified table
    # names (ours, Alembic's version table) resolve to the test's schema.
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend: the URL from `sqlite_url` or `postgres_url`."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on each backend (parametrized through `db_url`)."""
    engine = open_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()
