"""UTCDateTime stores UTC and reads back aware UTC on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from gateway.store.column_types import UTCDateTime

PLUS_TWO = timezone(timedelta(hours=2))
LOCAL_NOON = datetime(2026, 7, 1, 12, 0, tzinfo=PLUS_TWO)
# Dialects of engines that never connect.
SQLITE = sa.create_engine("sqlite://").dialect
POSTGRES = sa.create_engine("postgresql+psycopg://").dialect


def test_sqlite_stores_utc_wall_time() -> None:
    stored = UTCDateTime().process_bind_param(LOCAL_NOON, SQLITE)

    assert stored == datetime(2026, 7, 1, 10, 0)
    assert stored is not None
    assert stored.tzinfo is None


def test_postgres_stores_aware_utc() -> None:
    stored = UTCDateTime().process_bind_param(LOCAL_NOON, POSTGRES)

    assert stored == LOCAL_NOON
    assert stored is not None
    assert stored.tzinfo is UTC


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES])
def test_naive_datetimes_are_refused(dialect: Dialect) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (datetime(2026, 7, 1, 10, 0), datetime(2026, 7, 1, 10, 0, tzinfo=UTC)),
        (LOCAL_NOON, datetime(2026, 7, 1, 10, 0, tzinfo=UTC)),
        (None, None),
    ],
)
def test_values_read_back_are_aware_utc(raw: datetime | None, expected: datetime | None) -> None:
    value = UTCDateTime().process_result_value(raw, SQLITE)

    assert value == expected
    if value is not None:
        assert value.tzinfo is UTC
