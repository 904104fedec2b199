"""The shared policy store: Casbin rules, the policy version, the change log.

Revision ID: 0002_policies
Revises: 0001_registry
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_policies"
down_revision: str | Sequence[str] | None = "0001_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VALUES = ("v0", "v1", "v2", "v3", "v4", "v5")


def upgrade() -> None:
    op.create_table(
        "casbin_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ptype", sa.String(16), nullable=False),
        *(sa.Column(v, sa.String(200), server_default="", nullable=False) for v in _VALUES),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_casbin_rules")),
        sa.UniqueConstraint(
            "ptype", *_VALUES, name=op.f("uq_casbin_rules_ptype_v0_v1_v2_v3_v4_v5")
        ),
    )
    version = op.create_table(
        "policy_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False, comment="always 1"),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_version")),
    )
    # Version 0: never seeded. The first start seeds the policies/ files as version 1.
    op.bulk_insert(version, [{"id": 1, "version": 0, "changed_at": None}])
    op.create_table(
        "policy_changes",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("added", sa.Text(), nullable=False, comment="rules added, one per line"),
        sa.Column("removed", sa.Text(), nullable=False, comment="rules removed, one per line"),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policy_changes")),
    )


def downgrade() -> None:
    op.drop_table("policy_changes")
    op.drop_table("policy_version")
    op.drop_table("casbin_rules")
