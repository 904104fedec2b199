"""Long-running tasks and their events.

Revision ID: 0007_tasks
Revises: 0006_context
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_tasks"
down_revision: str | Sequence[str] | None = "0006_context"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("parent_task_id", sa.String(32), nullable=False),
        sa.Column("caller_domain", sa.String(63), nullable=False),
        sa.Column("caller_agent", sa.String(200), nullable=False),
        sa.Column("target_domain", sa.String(63), nullable=False),
        sa.Column("target_name", sa.String(63), nullable=False),
        sa.Column("target_version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True, comment="JSON of the output payload"),
        sa.Column("error", sa.Text(), nullable=True, comment="JSON [code, message, retryable]"),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("call_path", sa.Text(), nullable=False, comment="JSON list of domain/capability"),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("domain_sequence", sa.Integer(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column(
            "owner", sa.String(64), nullable=False, comment="gateway instance; empty once ended"
        ),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_tasks")),
    )
    op.create_index(op.f("ix_tasks_trace_id"), "tasks", ["trace_id"], unique=False)
    op.create_index(op.f("ix_tasks_target_domain"), "tasks", ["target_domain"], unique=False)
    op.create_index(op.f("ix_tasks_state"), "tasks", ["state"], unique=False)
    op.create_index(op.f("ix_tasks_created_at"), "tasks", ["created_at"], unique=False)
    op.create_index(
        "ix_tasks_caller_key", "tasks", ["caller_domain", "idempotency_key"], unique=False
    )
    op.create_table(
        "task_events",
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.task_id"],
            name=op.f("fk_task_events_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "sequence", name=op.f("pk_task_events")),
    )


def downgrade() -> None:
    op.drop_table("task_events")
    op.drop_index("ix_tasks_caller_key", table_name="tasks")
    op.drop_index(op.f("ix_tasks_created_at"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_state"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_target_domain"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_trace_id"), table_name="tasks")
    op.drop_table("tasks")
