"""On SQLite, the audit log's position `seq` becomes the table's rowid.

A `BIGINT PRIMARY KEY` is not SQLite's rowid: the table kept a rowid of its own
and a second b-tree for `seq`, so every record was written into one b-tree more
than needed and found by position through two. Declared `INTEGER`, the primary
key is the rowid itself. SQLite cannot change a column's type in place, so the
table is copied, rows unchanged. PostgreSQL is not touched (`seq` stays `BIGINT`).

The copy is written out rather than left to Alembic's batch mode, which recreates
indexes in an arbitrary order: without statistics, SQLite breaks ties between
equally good indexes by their order, so a query filtering on two columns (say a
decision and a target domain) would pick a different index from one database to
the next. The indexes are created again in the order of migration 0003.

Revision ID: 0008_audit_seq_rowid
Revises: 0007_tasks
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008_audit_seq_rowid"
down_revision: str | Sequence[str] | None = "0007_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FILTER_COLUMNS = (
    "event_type",
    "trace_id",
    "actor",
    "source_domain",
    "target_domain",
    "capability",
    "decision",
    "outcome",
)
_COPY = "_audit_records_copy"


def _columns(seq_type: sa.types.TypeEngine[int]) -> list[sa.Column[Any]]:
    text = sa.String
    return [
        sa.Column("seq", seq_type, autoincrement=False, nullable=False),
        sa.Column("event_id", text(), nullable=False),
        sa.Column("event_type", text(), nullable=False),
        sa.Column("caller_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_time", sa.DateTime(timezone=True), nullable=False),
        *(
            sa.Column(name, text(), nullable=False)
            for name in (
                "trace_id",
                "span_id",
                "parent_span_id",
                "actor",
                "source_domain",
                "target_domain",
                "capability",
                "decision",
                "rule",
            )
        ),
        sa.Column("policy_version", sa.BigInteger(), nullable=False),
        sa.Column("outcome", text(), nullable=False),
        sa.Column("duration_us", sa.BigInteger(), nullable=False),
        sa.Column("classifications", text(), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
    ]


def _copy_with_seq(seq_type: sa.types.TypeEngine[int]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    columns = _columns(seq_type)
    names = ", ".join(column.name for column in columns)
    op.create_table(
        _COPY,
        *columns,
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_records")),
        sa.UniqueConstraint("event_id", name=op.f("uq_audit_records_event_id")),
    )
    op.execute(f"INSERT INTO {_COPY} ({names}) SELECT {names} FROM audit_records ORDER BY seq")
    op.drop_table("audit_records")  # and its indexes
    op.rename_table(_COPY, "audit_records")
    op.create_index(op.f("ix_audit_records_log_time"), "audit_records", ["log_time"])
    for name in _FILTER_COLUMNS:
        op.create_index(f"ix_audit_records_{name}_seq", "audit_records", [name, "seq"])


def upgrade() -> None:
    _copy_with_seq(sa.Integer())


def downgrade() -> None:
    _copy_with_seq(sa.BigInteger())
