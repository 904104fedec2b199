"""The shared context space's tables.

    context_traces    trace_id -> revision (the trace's change counter; its row lock
                      orders the writes of one trace, also across replicas)
    context_items     (trace_id, key) -> the latest version: value, owner, classification
    context_versions  (trace_id, key, version) -> every version, for Get by version,
                      history and Watch (unique revision per trace)

Values are JSON text. Expired items and their versions are purged; their history
stays in the audit trail (keys, versions, classifications and content hashes).
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.column_types import UTCDateTime
from gateway.store.tables import NAME_LENGTH, metadata

TRACE_LENGTH = 64
KEY_LENGTH = 200
PRINCIPAL_LENGTH = 200

context_traces = sa.Table(
    "context_traces",
    metadata,
    sa.Column("trace_id", sa.String(TRACE_LENGTH), primary_key=True),
    sa.Column("revision", sa.BigInteger(), nullable=False),
)

context_items = sa.Table(
    "context_items",
    metadata,
    sa.Column("trace_id", sa.String(TRACE_LENGTH), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("revision", sa.BigInteger(), nullable=False),
    sa.Column("owner", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("classification", sa.SmallInteger(), nullable=False, comment="1 public .. 4"),
    sa.Column("value", sa.Text(), nullable=True, comment="JSON; NULL once deleted"),
    sa.Column("deleted", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(PRINCIPAL_LENGTH), nullable=False),
    sa.Column("written_at", UTCDateTime(), nullable=False),
    sa.Column("written_by", sa.String(PRINCIPAL_LENGTH), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True, index=True),
)

context_versions = sa.Table(
    "context_versions",
    metadata,
    sa.Column("trace_id", sa.String(TRACE_LENGTH), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("version", sa.BigInteger(), primary_key=True),
    sa.Column("revision", sa.BigInteger(), nullable=False),
    sa.Column("owner", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("classification", sa.SmallInteger(), nullable=False),
    sa.Column("value", sa.Text(), nullable=True),
    sa.Column("deleted", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(PRINCIPAL_LENGTH), nullable=False),
    sa.Column("written_at", UTCDateTime(), nullable=False),
    sa.Column("written_by", sa.String(PRINCIPAL_LENGTH), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("trace_id", "revision"),
)
