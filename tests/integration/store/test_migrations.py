"""The Alembic migrations create exactly the schema `gateway.store.tables` describes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from gateway.store.database import alembic_config, migrate, open_engine
from gateway.store.tables import metadata


def _single_head() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"migration history must stay linear, heads: {heads}"
    return heads[0]


HEAD = _single_head()


def test_migrated_schema_equals_the_metadata(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert context.get_current_revision() == HEAD
    finally:
        engine.dispose()


def test_migrate_twice_is_a_no_op(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        migrate(engine)
        migrate(engine)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
    finally:
        engine.dispose()


def test_replicas_migrating_at_once_all_succeed(db_url: str) -> None:
    engines = [open_engine(db_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(migrate, engines))
        with engines[0].connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
    finally:
        for engine in engines:
            engine.dispose()


def test_downgrade_to_base_drops_the_tables(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        tables = set(sa.inspect(engine).get_table_names())
        assert tables & {"domains", "capabilities", "endpoints"} == set()
    finally:
        engine.dispose()


def test_alembic_config_with_a_url_migrates_without_a_connection(sqlite_url: str) -> None:
    command.upgrade(alembic_config(sqlite_url), "head")

    engine = open_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
    finally:
        engine.dispose()
