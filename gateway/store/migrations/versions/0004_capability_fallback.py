"""Capabilities may name a fallback capability.

Revision ID: 0004_capability_fallback
Revises: 0003_audit
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_capability_fallback"
down_revision: str | Sequence[str] | None = "0003_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place beyond simple cases.
    with op.batch_alter_table("capabilities") as batch:
        batch.add_column(
            sa.Column(
                "fallback", sa.String(), nullable=True, comment="domain/name[@version] or NULL"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("capabilities") as batch:
        batch.drop_column("fallback")
