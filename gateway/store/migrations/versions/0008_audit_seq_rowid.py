"""On SQLite, the audit log's position `seq` becomes the table's rowid.

A `BIGINT PRIMARY KEY` is not SQLite's rowid: the table kept a rowid of its own
and a second b-tree for `seq`, so every record was written into one b-tree more
than needed and found by position through two. Declared `INTEGER`, the primary
key is the rowid itself. SQLite cannot change a column's type in place: the table
is copied (Alembic's batch mode), with its rows, constraints and indexes, unchanged
in content. PostgreSQL is not touched (`seq` stays `BIGINT`).

Revision ID: 0008_audit_seq_rowid
Revises: 0007_tasks
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_audit_seq_rowid"
down_revision: str | Sequence[str] | None = "0007_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _seq_type(new: sa.types.TypeEngine[int], old: sa.types.TypeEngine[int]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("audit_records", recreate="always") as batch:
        batch.alter_column("seq", type_=new, existing_type=old, existing_nullable=False)


def upgrade() -> None:
    _seq_type(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _seq_type(sa.BigInteger(), sa.Integer())
