"""The shared context space: traces, items and their versions.

Revision ID: 0006_context
Revises: 0005_idempotency_keys
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_context"
down_revision: str | Sequence[str] | None = "0005_idempotency_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _version_columns(value_comment: str | None = None) -> list[sa.Column[object]]:
    return [
        sa.Column("owner", sa.String(63), nullable=False),
        sa.Column("value", sa.Text(), nullable=True, comment=value_comment),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_by", sa.String(200), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "context_traces",
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name=op.f("pk_context_traces")),
    )
    op.create_table(
        "context_items",
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("classification", sa.SmallInteger(), nullable=False, comment="1 public .. 4"),
        *_version_columns("JSON; NULL once deleted"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("trace_id", "key", name=op.f("pk_context_items")),
    )
    op.create_index(
        op.f("ix_context_items_expires_at"), "context_items", ["expires_at"], unique=False
    )
    op.create_table(
        "context_versions",
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("classification", sa.SmallInteger(), nullable=False),
        *_version_columns(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("trace_id", "key", "version", name=op.f("pk_context_versions")),
        sa.UniqueConstraint(
            "trace_id", "revision", name=op.f("uq_context_versions_trace_id_revision")
        ),
    )


def downgrade() -> None:
    op.drop_table("context_versions")
    op.drop_index(op.f("ix_context_items_expires_at"), table_name="context_items")
    op.drop_table("context_items")
    op.drop_table("context_traces")
