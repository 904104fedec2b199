"""The registry's tables, in SQLAlchemy Core.

    domains        name ─┬─< capabilities   (domain, name, version)
                         └─< endpoints      (domain, address), lease_id unique

The migrations in `gateway/store/migrations/versions` create exactly this
schema; a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.column_types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are derived, so migrations can refer to them on every backend."""

NAME_LENGTH = 63
"""Longest domain or capability name (see `gateway.core.names`)."""

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

domains = sa.Table(
    "domains",
    metadata,
    sa.Column("name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("owner", sa.String(), nullable=False),
    sa.Column("registered_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

capabilities = sa.Table(
    "capabilities",
    metadata,
    sa.Column(
        "domain",
        sa.String(NAME_LENGTH),
        sa.ForeignKey("domains.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("version", sa.String(), primary_key=True),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("input_schema", sa.Text(), nullable=False, comment="JSON object"),
    sa.Column("output_schema", sa.Text(), nullable=False, comment="JSON object"),
    sa.Column("idempotent", sa.Boolean(), nullable=False),
    sa.Column("default_timeout_ms", sa.BigInteger(), nullable=False),
    sa.Column("accepts", sa.Text(), nullable=False, comment="JSON list of classifications"),
    sa.Column("returns", sa.Text(), nullable=False, comment="JSON list of classifications"),
    sa.Column("fallback", sa.String(), nullable=True, comment="domain/name[@version] or NULL"),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column(
        "domain",
        sa.String(NAME_LENGTH),
        sa.ForeignKey("domains.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("address", sa.String(), primary_key=True),
    sa.Column("lease_id", sa.String(32), nullable=False, unique=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("registered_at", UTCDateTime(), nullable=False),
)
