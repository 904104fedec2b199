"""The long-running task tables: one row per task, one per event.

    tasks         task_id ─< task_events  (task_id, sequence)

Defined on the one `gateway.store.tables.metadata`, so migrations are checked against
every table of the gateway.
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.column_types import UTCDateTime
from gateway.store.tables import NAME_LENGTH, metadata

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.String(32), primary_key=True),
    sa.Column("trace_id", sa.String(64), nullable=False, index=True),
    sa.Column("parent_task_id", sa.String(32), nullable=False),
    sa.Column("caller_domain", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("caller_agent", sa.String(200), nullable=False),
    sa.Column("target_domain", sa.String(NAME_LENGTH), nullable=False, index=True),
    sa.Column("target_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("target_version", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("output", sa.Text(), nullable=True, comment="JSON of the output payload"),
    sa.Column("error", sa.Text(), nullable=True, comment="JSON [code, message, retryable]"),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("deadline", UTCDateTime(), nullable=True),
    sa.Column("depth", sa.Integer(), nullable=False),
    sa.Column("call_path", sa.Text(), nullable=False, comment="JSON list of domain/capability"),
    sa.Column("endpoint", sa.String(255), nullable=False),
    sa.Column("domain_sequence", sa.Integer(), nullable=False),
    sa.Column("last_sequence", sa.Integer(), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False, comment="gateway instance; empty once ended"),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_tasks_caller_key", "caller_domain", "idempotency_key"),
)

task_events = sa.Table(
    "task_events",
    metadata,
    sa.Column(
        "task_id",
        sa.String(32),
        sa.ForeignKey("tasks.task_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("sequence", sa.Integer(), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("output", sa.Text(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("final", sa.Boolean(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)
