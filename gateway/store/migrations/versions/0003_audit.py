"""The audit trail: records, the head row every writer locks, signed checkpoints.

Revision ID: 0003_audit
Revises: 0002_policies
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_audit"
down_revision: str | Sequence[str] | None = "0002_policies"
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


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("caller_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("span_id", sa.String(), nullable=False),
        sa.Column("parent_span_id", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("source_domain", sa.String(), nullable=False),
        sa.Column("target_domain", sa.String(), nullable=False),
        sa.Column("capability", sa.String(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("policy_version", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("duration_us", sa.BigInteger(), nullable=False),
        sa.Column(
            "classifications",
            sa.String(),
            nullable=False,
            comment="JSON array of classification names, sorted",
        ),
        sa.Column("attributes", sa.Text(), nullable=False, comment="canonical JSON object"),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_records")),
        sa.UniqueConstraint("event_id", name=op.f("uq_audit_records_event_id")),
    )
    op.create_index(op.f("ix_audit_records_log_time"), "audit_records", ["log_time"])
    for name in _FILTER_COLUMNS:
        op.create_index(f"ix_audit_records_{name}_seq", "audit_records", [name, "seq"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False, comment="always 1"),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "frontier",
            sa.LargeBinary(),
            nullable=False,
            comment="Merkle subtree roots of the log, largest first (32 bytes each)",
        ),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # The empty log: chain hash 32 zero bytes, no subtrees.
    op.bulk_insert(
        head,
        [
            {
                "id": 1,
                "size": 0,
                "chain_hash": bytes(32),
                "frontier": b"",
                "checkpoint_size": 0,
                "checkpoint_at": None,
                "updated_at": None,
            }
        ],
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signer", sa.String(), nullable=False, comment="verifier key of the signer"),
        sa.Column("note", sa.Text(), nullable=False, comment="the signed C2SP checkpoint"),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_head")
    for name in _FILTER_COLUMNS:
        op.drop_index(f"ix_audit_records_{name}_seq", table_name="audit_records")
    op.drop_index(op.f("ix_audit_records_log_time"), table_name="audit_records")
    op.drop_table("audit_records")
