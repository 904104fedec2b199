"""`SqlRegistryStore`: the registry of domains, catalogs and leases in SQL.

Concurrent registrations of one domain (threads, or replicas sharing
PostgreSQL) queue on the domain's row: the first statement of `register` is an
upsert of that row, which locks it until commit, so catalog replacement and
endpoint upsert never interleave and never hit a unique violation. SQLite gets
the same order from `BEGIN IMMEDIATE` (one writer at a time).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from gateway.core.models import CapabilitySpec, DomainRecord, EndpointRecord
from gateway.store import tables
from gateway.store.database import run_transaction
from gateway.store.registry_rows import capability_from_row, capability_row, endpoint_from_row

_UPSERT_DIALECTS = frozenset({"postgresql", "sqlite"})
# INSERT ... ON CONFLICT DO UPDATE is dialect-specific in SQLAlchemy; these
# two have it (see `SqlRegistryStore._upsert`).


class SqlRegistryStore:
    """The `gateway.core.ports.RegistryStore` on SQLite or PostgreSQL.

    Every method is one transaction and raises `gateway.errors.StoreUnavailable`
    when the database cannot be reached. The schema must be migrated first
    (`gateway.store.database.migrate`).

    Args:
        engine: An engine from `gateway.store.database.open_engine`.

    Raises:
        ValueError: The engine's database is neither SQLite nor PostgreSQL.
    """

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in _UPSERT_DIALECTS:
            raise ValueError(
                f"unsupported database {engine.dialect.name!r}: use SQLite or PostgreSQL"
            )
        self._engine = engine

    # --- writes ---------------------------------------------------------------

    def register(
        self,
        *,
        domain: str,
        owner: str,
        address: str,
        capabilities: Sequence[CapabilitySpec],
        lease_ttl: timedelta,
        now: datetime,
    ) -> EndpointRecord:
        """Upserts the domain, replaces its catalog atomically and (re)leases the endpoint.

        The domain keeps its first `registered_at`; `owner` and `updated_at` are
        replaced. The endpoint, identified by (domain, address), gets a fresh
        lease id, `lease_expires_at = now + lease_ttl` and `registered_at = now`.

        Args:
            domain: The domain's name.
            owner: Who owns the domain.
            address: The endpoint's host:port.
            capabilities: The domain's whole catalog, replacing the stored one.
            lease_ttl: How long the lease lasts without a renewal.
            now: The current time, timezone-aware.

        Returns:
            The endpoint with its new lease.
        """
        catalog = [capability_row(domain, spec) for spec in capabilities]
        lease = {
            "domain": domain,
            "address": address,
            "lease_id": uuid.uuid4().hex,
            "lease_expires_at": now + lease_ttl,
            "registered_at": now,
        }

        def work(conn: Connection) -> EndpointRecord:
            conn.execute(
                self._upsert(
                    tables.domains,
                    {"name": domain, "owner": owner, "registered_at": now, "updated_at": now},
                    keys=("name",),
                    update=("owner", "updated_at"),
                )
            )
            conn.execute(
                sa.delete(tables.capabilities).where(tables.capabilities.c.domain == domain)
            )
            if catalog:
                conn.execute(sa.insert(tables.capabilities), catalog)
            row = (
                conn.execute(
                    self._upsert(
                        tables.endpoints,
                        lease,
                        keys=("domain", "address"),
                        update=("lease_id", "lease_expires_at", "registered_at"),
                    ).returning(*tables.endpoints.c)
                )
                .mappings()
                .one()
            )
            return endpoint_from_row(row)

        return run_transaction(self._engine, work)

    def renew(
        self, *, domain: str, lease_id: str, lease_ttl: timedelta, now: datetime
    ) -> EndpointRecord | None:
        """Extends a lease that has not expired.

        Args:
            domain: The domain the lease belongs to.
            lease_id: The lease to extend.
            lease_ttl: The new lease length, counted from `now`.
            now: The current time, timezone-aware.

        Returns:
            The endpoint with its extended lease, or None if the lease is unknown,
            belongs to another domain or expired at or before `now`.
        """
        statement = (
            sa.update(tables.endpoints)
            .where(
                tables.endpoints.c.domain == domain,
                tables.endpoints.c.lease_id == lease_id,
                tables.endpoints.c.lease_expires_at > now,
            )
            .values(lease_expires_at=now + lease_ttl)
            .returning(*tables.endpoints.c)
        )

        def work(conn: Connection) -> EndpointRecord | None:
            row = conn.execute(statement).mappings().one_or_none()
            return None if row is None else endpoint_from_row(row)

        return run_transaction(self._engine, work)

    def deregister(self, *, domain: str, lease_id: str | None) -> int:
        """Removes one endpoint (by lease) or all endpoints of the domain.

        The domain row and its catalog stay (history is never deleted).

        Args:
            domain: The domain whose endpoints go.
            lease_id: The lease of the endpoint to remove; None removes them all.

        Returns:
            How many endpoints were removed.
        """
        statement = sa.delete(tables.endpoints).where(tables.endpoints.c.domain == domain)
        if lease_id is not None:
            statement = statement.where(tables.endpoints.c.lease_id == lease_id)

        def work(conn: Connection) -> int:
            return conn.execute(statement).rowcount

        return run_transaction(self._engine, work)

    def reap_expired(self, *, now: datetime) -> list[EndpointRecord]:
        """Deletes the endpoints whose lease ran out at or before `now`.

        Args:
            now: The current time, timezone-aware.

        Returns:
            The deleted endpoints, ordered by domain and address.
        """
        statement = (
            sa.delete(tables.endpoints)
            .where(tables.endpoints.c.lease_expires_at <= now)
            .returning(*tables.endpoints.c)
        )

        def work(conn: Connection) -> list[EndpointRecord]:
            rows = conn.execute(statement).mappings().all()
            return sorted((endpoint_from_row(r) for r in rows), key=lambda e: (e.domain, e.address))

        return run_transaction(self._engine, work)

    # --- reads ----------------------------------------------------------------

    def get_domain(self, name: str) -> DomainRecord | None:
        """One domain with its catalog and endpoints.

        Args:
            name: The domain's name.

        Returns:
            The domain as of one snapshot of the database, or None if unknown.
        """

        def work(conn: Connection) -> DomainRecord | None:
            records = _load_domains(conn, name)
            return records[0] if records else None

        return run_transaction(self._engine, work, read_only=True)

    def list_domains(self) -> list[DomainRecord]:
        """Every known domain ordered by name, with catalogs and endpoints.

        Returns:
            The domains as of one snapshot of the database (three queries in all).
        """
        return run_transaction(self._engine, lambda conn: _load_domains(conn, None), read_only=True)

    # --- helpers --------------------------------------------------------------

    def _upsert(
        self,
        table: sa.Table,
        values: dict[str, Any],
        *,
        keys: tuple[str, ...],
        update: tuple[str, ...],
    ) -> sa.Insert:
        if self._engine.dialect.name == "postgresql":
            pg_insert = postgresql.insert(table).values(values)
            return pg_insert.on_conflict_do_update(
                index_elements=list(keys),
                set_={column: pg_insert.excluded[column] for column in update},
            )
        sqlite_insert = sqlite.insert(table).values(values)
        return sqlite_insert.on_conflict_do_update(
            index_elements=list(keys),
            set_={column: sqlite_insert.excluded[column] for column in update},
        )


def _load_domains(conn: Connection, name: str | None) -> list[DomainRecord]:
    domain_query = sa.select(tables.domains).order_by(tables.domains.c.name)
    capability_query = sa.select(tables.capabilities).order_by(
        tables.capabilities.c.domain, tables.capabilities.c.name, tables.capabilities.c.version
    )
    endpoint_query = sa.select(tables.endpoints).order_by(
        tables.endpoints.c.domain, tables.endpoints.c.address
    )
    if name is not None:
        domain_query = domain_query.where(tables.domains.c.name == name)
        capability_query = capability_query.where(tables.capabilities.c.domain == name)
        endpoint_query = endpoint_query.where(tables.endpoints.c.domain == name)
    domain_rows = conn.execute(domain_query).mappings().all()
    if not domain_rows:
        return []
    catalogs = _group(conn.execute(capability_query).mappings())
    leases = _group(conn.execute(endpoint_query).mappings())
    return [
        DomainRecord(
            name=row["name"],
            owner=row["owner"],
            registered_at=row["registered_at"],
            updated_at=row["updated_at"],
            capabilities=tuple(capability_from_row(r) for r in catalogs[row["name"]]),
            endpoints=tuple(endpoint_from_row(r) for r in leases[row["name"]]),
        )
        for row in domain_rows
    ]


def _group(rows: Iterable[RowMapping]) -> defaultdict[str, list[RowMapping]]:
    grouped: defaultdict[str, list[RowMapping]] = defaultdict(list)
    for row in rows:
        grouped[row["domain"]].append(row)
    return grouped
