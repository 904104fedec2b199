"""Tables of the audit trail.

    audit_records      one row per record; `seq` is the log position (0, 1, 2, ...
                       without gaps), assigned by the writer holding the head row
    audit_head         one row (id 1): size, last chain hash, Merkle frontier and
                       newest checkpoint; every append locks it (one order for all
                       writers, on every replica)
    audit_checkpoints  signed C2SP checkpoints (size, root hash, the note)

The record columns are exactly the fields of the canonical form
(`gateway.core.audit_record`), so verification recomputes every hash from them.
Each filter of the compliance queries has an index ending in `seq`, so a filtered
page ordered by position reads only its rows.

Defined on the one `gateway.store.tables.metadata`, so migrations are checked against
every table of the gateway (migration 0003_audit creates these).
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.column_types import UTCDateTime
from gateway.store.tables import metadata

HEAD_ID = 1
"""The id of the one `audit_head` row."""

FILTER_COLUMNS = (
    "event_type",
    "trace_id",
    "actor",
    "source_domain",
    "target_domain",
    "capability",
    "decision",
    "outcome",
)
"""Columns the compliance queries filter on; each has an index on (column, seq)."""

audit_records = sa.Table(
    "audit_records",
    metadata,
    # On SQLite an INTEGER primary key is the rowid (migration 0008): one b-tree
    # less to write per record than a BIGINT key beside the table's own rowid.
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("event_id", sa.String(), nullable=False, unique=True),
    sa.Column("event_type", sa.String(), nullable=False),
    sa.Column("caller_time", UTCDateTime(), nullable=False),
    sa.Column("log_time", UTCDateTime(), nullable=False, index=True),
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
    *(sa.Index(f"ix_audit_records_{name}_seq", name, "seq") for name in FILTER_COLUMNS),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False, comment="always 1"),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
    sa.Column(
        "frontier",
        sa.LargeBinary(),
        nullable=False,
        comment="Merkle subtree roots of the log, largest first (32 bytes each)",
    ),
    sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
    sa.Column("checkpoint_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=True),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("signer", sa.String(), nullable=False, comment="verifier key of the signer"),
    sa.Column("note", sa.Text(), nullable=False, comment="the signed C2SP checkpoint"),
)

__all__ = ["audit_checkpoints", "audit_head", "audit_records", "metadata"]
