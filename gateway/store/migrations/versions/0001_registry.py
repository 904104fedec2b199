"""The registry: domains, their capability catalogs and endpoint leases.

Revision ID: 0001_registry
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_registry"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_domains")),
    )
    op.create_table(
        "capabilities",
        sa.Column("domain", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("input_schema", sa.Text(), nullable=False, comment="JSON object"),
        sa.Column("output_schema", sa.Text(), nullable=False, comment="JSON object"),
        sa.Column("idempotent", sa.Boolean(), nullable=False),
        sa.Column("default_timeout_ms", sa.BigInteger(), nullable=False),
        sa.Column("accepts", sa.Text(), nullable=False, comment="JSON list of classifications"),
        sa.Column("returns", sa.Text(), nullable=False, comment="JSON list of classifications"),
        sa.ForeignKeyConstraint(
            ["domain"],
            ["domains.name"],
            name=op.f("fk_capabilities_domain_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("domain", "name", "version", name=op.f("pk_capabilities")),
    )
    op.create_table(
        "endpoints",
        sa.Column("domain", sa.String(63), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("lease_id", sa.String(32), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain"],
            ["domains.name"],
            name=op.f("fk_endpoints_domain_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("domain", "address", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("lease_id", name=op.f("uq_endpoints_lease_id")),
    )
    op.create_index(
        op.f("ix_endpoints_lease_expires_at"), "endpoints", ["lease_expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_endpoints_lease_expires_at"), table_name="endpoints")
    op.drop_table("endpoints")
    op.drop_table("capabilities")
    op.drop_table("domains")
