"""SqlRegistryStore on SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.core.models import CapabilitySpec, Classification, DomainRecord, EndpointRecord
from gateway.store.database import open_engine
from gateway.store.registry_store import SqlRegistryStore

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def cap(name: str, version: str = "1.0", **fields: Any) -> CapabilitySpec:
    return CapabilitySpec(name=name, version=version, **fields)


@pytest.fixture
def store(db_engine: Engine) -> SqlRegistryStore:
    return SqlRegistryStore(db_engine)


def register(
    store: SqlRegistryStore,
    domain: str = "finance",
    address: str = "10.0.0.1:7000",
    capabilities: tuple[CapabilitySpec, ...] = (cap("reconcile"),),
    *,
    owner: str = "team-finance",
    ttl: timedelta = TTL,
    now: datetime = T0,
) -> EndpointRecord:
    return store.register(
        domain=domain,
        owner=owner,
        address=address,
        capabilities=capabilities,
        lease_ttl=ttl,
        now=now,
    )


def test_register_then_get_returns_domain_catalog_and_endpoint(store: SqlRegistryStore) -> None:
    full = cap(
        "reconcile",
        "2.1",
        description="Reconciles ledgers",
        input_schema={"type": "object", "properties": {"month": {"type": "string"}}},
        output_schema={"type": "object"},
        idempotent=True,
        default_timeout=timedelta(milliseconds=1500),
        accepts=(Classification.INTERNAL, Classification.CONFIDENTIAL),
        returns=(Classification.PUBLIC,),
    )

    endpoint = register(store, capabilities=(full, cap("report")))

    assert endpoint.domain == "finance"
    assert endpoint.address == "10.0.0.1:7000"
    assert len(endpoint.lease_id) == 32
    assert int(endpoint.lease_id, 16) >= 0
    assert endpoint.lease_expires_at == T0 + TTL
    assert endpoint.registered_at == T0
    assert store.get_domain("finance") == DomainRecord(
        name="finance",
        owner="team-finance",
        registered_at=T0,
        updated_at=T0,
        capabilities=(full, cap("report")),
        endpoints=(endpoint,),
    )


def test_unknown_domain_is_none_and_empty_registry_lists_nothing(
    store: SqlRegistryStore,
) -> None:
    assert store.get_domain("nobody") is None
    assert store.list_domains() == []


def test_list_domains_is_ordered_by_name_with_catalogs_and_endpoints(
    store: SqlRegistryStore,
) -> None:
    for name in ("zeta", "alpha", "mid"):
        register(store, name, f"{name}.internal:7000", (cap(f"{name}-op"),))
    register(store, "alpha", "alpha-2.internal:7000", (cap("alpha-op"),))

    records = store.list_domains()

    assert [r.name for r in records] == ["alpha", "mid", "zeta"]
    assert [[c.name for c in r.capabilities] for r in records] == [
        ["alpha-op"],
        ["mid-op"],
        ["zeta-op"],
    ]
    assert [[e.address for e in r.endpoints] for r in records] == [
        ["alpha-2.internal:7000", "alpha.internal:7000"],
        ["mid.internal:7000"],
        ["zeta.internal:7000"],
    ]


def test_list_domains_reads_with_three_queries(store: SqlRegistryStore, db_engine: Engine) -> None:
    for i in range(5):
        register(store, f"domain-{i}", f"10.0.0.{i}:7000", (cap("a"), cap("b")))
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM" in statement.upper():
            selects.append(statement)

    sa.event.listen(db_engine, "before_cursor_execute", count)
    try:
        records = store.list_domains()
    finally:
        sa.event.remove(db_engine, "before_cursor_execute", count)

    assert len(records) == 5
    assert len(selects) == 3


def test_reregistration_replaces_catalog_and_owner_but_keeps_registered_at(
    store: SqlRegistryStore,
) -> None:
    register(store, capabilities=(cap("old-a"), cap("old-b")), owner="first")
    later = T0 + timedelta(minutes=5)

    register(store, capabilities=(cap("new", "2.0"),), owner="second", now=later)

    record = store.get_domain("finance")
    assert record is not None
    assert record.capabilities == (cap("new", "2.0"),)
    assert record.owner == "second"
    assert record.registered_at == T0
    assert record.updated_at == later


def test_reregistration_with_an_empty_catalog_clears_it(store: SqlRegistryStore) -> None:
    register(store)
    register(store, capabilities=())

    record = store.get_domain("finance")
    assert record is not None
    assert record.capabilities == ()


def test_reregistering_an_address_issues_a_fresh_lease(store: SqlRegistryStore) -> None:
    first = register(store)
    later = T0 + timedelta(seconds=10)

    second = register(store, now=later)

    assert second.lease_id != first.lease_id
    assert second.lease_expires_at == later + TTL
    record = store.get_domain("finance")
    assert record is not None
    assert record.endpoints == (second,)
    assert store.renew(domain="finance", lease_id=first.lease_id, lease_ttl=TTL, now=later) is None


def test_a_domain_holds_several_endpoints(store: SqlRegistryStore) -> None:
    one = register(store, address="10.0.0.1:7000")
    two = register(store, address="10.0.0.2:7000", ttl=timedelta(seconds=60))

    record = store.get_domain("finance")

    assert record is not None
    assert record.endpoints == (one, two)
    assert one.lease_id != two.lease_id


def test_renew_extends_a_live_lease(store: SqlRegistryStore) -> None:
    endpoint = register(store)
    now = T0 + timedelta(seconds=20)

    renewed = store.renew(
        domain="finance", lease_id=endpoint.lease_id, lease_ttl=timedelta(seconds=45), now=now
    )

    assert renewed is not None
    assert renewed.lease_id == endpoint.lease_id
    assert renewed.lease_expires_at == now + timedelta(seconds=45)
    assert renewed.registered_at == endpoint.registered_at
    record = store.get_domain("finance")
    assert record is not None
    assert record.endpoints == (renewed,)


def test_renew_of_unknown_expired_or_foreign_lease_returns_none(
    store: SqlRegistryStore,
) -> None:
    endpoint = register(store)
    register(store, "risk", "10.0.1.1:7000")
    expiry = endpoint.lease_expires_at

    assert store.renew(domain="finance", lease_id="0" * 32, lease_ttl=TTL, now=T0) is None
    assert store.renew(domain="risk", lease_id=endpoint.lease_id, lease_ttl=TTL, now=T0) is None
    # A lease is over at its expiry instant, as `EndpointRecord.live` says.
    assert (
        store.renew(domain="finance", lease_id=endpoint.lease_id, lease_ttl=TTL, now=expiry) is None
    )
    record = store.get_domain("finance")
    assert record is not None
    assert record.endpoints == (endpoint,)


def test_deregister_one_endpoint_by_lease(store: SqlRegistryStore) -> None:
    one = register(store, address="10.0.0.1:7000")
    two = register(store, address="10.0.0.2:7000")

    assert store.deregister(domain="finance", lease_id=one.lease_id) == 1
    assert store.deregister(domain="finance", lease_id=one.lease_id) == 0
    assert store.deregister(domain="risk", lease_id=two.lease_id) == 0

    record = store.get_domain("finance")
    assert record is not None
    assert record.endpoints == (two,)


def test_deregister_all_keeps_domain_and_catalog(store: SqlRegistryStore) -> None:
    register(store, address="10.0.0.1:7000")
    register(store, address="10.0.0.2:7000")

    assert store.deregister(domain="finance", lease_id=None) == 2

    record = store.get_domain("finance")
    assert record is not None
    assert record.endpoints == ()
    assert record.capabilities == (cap("reconcile"),)
    assert store.deregister(domain="finance", lease_id=None) == 0


def test_reap_expired_removes_only_expired_endpoints(store: SqlRegistryStore) -> None:
    short = register(store, address="10.0.0.1:7000", ttl=timedelta(seconds=5))
    exact = register(store, "risk", "10.0.1.1:7000", ttl=timedelta(seconds=10))
    long = register(store, address="10.0.0.3:7000", ttl=timedelta(seconds=20))

    reaped = store.reap_expired(now=T0 + timedelta(seconds=10))

    assert reaped == [short, exact]
    assert store.reap_expired(now=T0 + timedelta(seconds=10)) == []
    finance, risk = store.list_domains()
    assert finance.endpoints == (long,)
    assert risk.endpoints == ()
    assert risk.capabilities == (cap("reconcile"),)


def test_datetimes_come_back_aware_utc(store: SqlRegistryStore) -> None:
    berlin_summer = timezone(timedelta(hours=2))
    now = datetime(2026, 7, 1, 14, 0, 0, 123456, tzinfo=berlin_summer)

    endpoint = register(store, now=now)
    record = store.get_domain("finance")

    assert record is not None
    stamps = [
        endpoint.registered_at,
        endpoint.lease_expires_at,
        record.registered_at,
        record.updated_at,
        record.endpoints[0].registered_at,
        record.endpoints[0].lease_expires_at,
    ]
    assert all(stamp.tzinfo is UTC for stamp in stamps)
    assert record.registered_at == now
    assert record.registered_at.hour == 12
    assert record.endpoints[0].lease_expires_at == now + TTL


def test_naive_datetimes_are_refused(store: SqlRegistryStore) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        register(store, now=datetime(2026, 1, 1, 12, 0))


def test_concurrent_reader_never_sees_a_partial_catalog(store: SqlRegistryStore) -> None:
    def generation(i: int) -> tuple[CapabilitySpec, ...]:
        return tuple(cap(f"op-{i}-{part}") for part in ("a", "b", "c"))

    register(store, capabilities=generation(0))
    writes_done = threading.Event()
    seen: list[tuple[str, ...]] = []

    first_read = threading.Event()

    def read_until_done() -> None:
        while not writes_done.is_set():
            record = store.get_domain("finance")
            assert record is not None
            seen.append(tuple(c.name for c in record.capabilities))
            first_read.set()

    def rewrite() -> None:
        try:
            # Start writing only once the reader runs, so the two surely overlap.
            assert first_read.wait(timeout=30)
            for i in range(1, 51):
                register(store, capabilities=generation(i), now=T0 + timedelta(seconds=i))
        finally:
            writes_done.set()

    with ThreadPoolExecutor(2) as pool:
        reader = pool.submit(read_until_done)
        writer = pool.submit(rewrite)
        writer.result()
        reader.result()

    assert seen
    for names in seen:
        assert len(names) == 3, names
        assert len({name.rsplit("-", 1)[0] for name in names}) == 1, names
    record = store.get_domain("finance")
    assert record is not None
    assert record.capabilities == generation(50)


@pytest.fixture
def second_engine(db_url: str) -> Iterator[Engine]:
    """Another engine on the same database, as a second gateway replica would have."""
    engine = open_engine(db_url)
    yield engine
    engine.dispose()


def _register_at_once(
    stores: list[SqlRegistryStore], threads: int, catalog: tuple[CapabilitySpec, ...], now: datetime
) -> list[EndpointRecord]:
    start = threading.Barrier(threads)

    def register_one(i: int) -> EndpointRecord:
        start.wait()
        return register(
            stores[i % len(stores)],
            address=f"10.0.0.{i}:7000",
            capabilities=catalog,
            owner=f"owner-{i}",
            now=now,
        )

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(register_one, range(threads)))


def test_concurrent_registrations_of_one_domain_all_succeed(
    store: SqlRegistryStore, second_engine: Engine
) -> None:
    stores = [store, SqlRegistryStore(second_engine)]
    threads = 8
    catalog = (cap("reconcile"), cap("report"))

    # The first round creates the domain concurrently, the second updates it.
    for round_ in range(2):
        results = _register_at_once(stores, threads, catalog, T0 + timedelta(seconds=round_))

        record = store.get_domain("finance")
        assert record is not None
        assert sorted(record.endpoints, key=lambda e: e.address) == sorted(
            results, key=lambda e: e.address
        )
        assert len({e.lease_id for e in results}) == threads
        assert record.capabilities == catalog
        assert record.registered_at == T0
