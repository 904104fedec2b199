"""The `idempotency_keys` table: (caller, key) -> request fingerprint, state and outcome.

Defined on the one `gateway.store.tables.metadata`, so migrations are checked against
every table of the gateway.
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.column_types import UTCDateTime
from gateway.store.tables import NAME_LENGTH, metadata

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("caller", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, comment="pending or done"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("task_id", sa.String(32), nullable=True),
    sa.Column("trace_id", sa.String(64), nullable=True),
    sa.Column("target", sa.String(), nullable=True, comment="domain/name@version"),
    sa.Column("outcome", sa.Text(), nullable=True, comment="JSON of the final task update"),
)
