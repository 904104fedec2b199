"""Tables of the shared policy store.

    casbin_rules     one row per rule: ptype (p, g, flow), v0..v5 (unused ones are '')
    policy_version   one row (id 1): the version of the stored policy, bumped by
                     every change in the same transaction
    policy_changes   the change log: version, who, what (rules added/removed), when

Defined on the one `gateway.store.tables.metadata`, so migrations are checked against
every table of the gateway (migration 0002_policies creates these).
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.column_types import UTCDateTime
from gateway.store.tables import metadata

RULE_VALUES = ("v0", "v1", "v2", "v3", "v4", "v5")
"""The value columns of `casbin_rules`, the usual layout of Casbin adapters."""

VALUE_LENGTH = 200
"""Longest rule value (see `gateway.core.policy.rules`)."""

casbin_rules = sa.Table(
    "casbin_rules",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("ptype", sa.String(16), nullable=False),
    *(
        sa.Column(name, sa.String(VALUE_LENGTH), nullable=False, server_default="")
        for name in RULE_VALUES
    ),
    sa.UniqueConstraint("ptype", *RULE_VALUES),
)

policy_version = sa.Table(
    "policy_version",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False, comment="always 1"),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("changed_at", UTCDateTime(), nullable=True),
)

policy_changes = sa.Table(
    "policy_changes",
    metadata,
    sa.Column("version", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("actor", sa.String(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("added", sa.Text(), nullable=False, comment="rules added, one per line"),
    sa.Column("removed", sa.Text(), nullable=False, comment="rules removed, one per line"),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
)

__all__ = ["casbin_rules", "metadata", "policy_changes", "policy_version"]
