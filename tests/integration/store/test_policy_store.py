"""SqlPolicyStore and SqlPolicyAdapter on SQLite and PostgreSQL: versions, change log, seeding."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import casbin
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.core.policy import parse_rule, parse_rules
from gateway.store.policy_adapter import SqlPolicyAdapter
from gateway.store.policy_store import SqlPolicyStore
from gateway.store.policy_tables import casbin_rules

POLICIES = Path(__file__).resolve().parents[3] / "policies"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
A = parse_rule("p, support, risk, score, invoke")
B = parse_rule("g, cli, risk-client, risk")
F = parse_rule("flow, support, risk, internal")


@pytest.fixture
def store(db_engine: Engine) -> SqlPolicyStore:
    return SqlPolicyStore(db_engine)


def test_a_fresh_store_is_version_zero_and_empty(store: SqlPolicyStore) -> None:
    assert store.current_version() == 0
    assert store.load().rules == ()
    assert store.changes() == []


def test_seed_happens_once(store: SqlPolicyStore) -> None:
    seeded = store.seed([A, B, F], actor="seed", now=NOW)
    assert seeded is not None
    assert (seeded.version, seeded.kind, seeded.added) == (1, "seed", (A, B, F))
    assert store.seed([A], actor="seed", now=NOW) is None
    assert store.load().version == 1
    assert store.load().rules == (A, B, F)


def test_seeding_an_empty_rule_set_still_marks_the_store_seeded(store: SqlPolicyStore) -> None:
    assert store.seed([], actor="seed", now=NOW) is not None
    assert store.current_version() == 1
    assert store.seed([A], actor="seed", now=NOW) is None


def test_every_change_bumps_the_version_once_and_is_logged(store: SqlPolicyStore) -> None:
    first = store.add([A, B], actor="admin", now=NOW)
    assert (first.version, first.added, first.changed) == (1, (A, B), True)
    second = store.add([B, F], actor="admin", now=NOW)
    assert (second.version, second.added) == (2, (F,))
    third = store.remove([A, parse_rule("p, x1, y1, z, invoke")], actor="ops", now=NOW)
    assert (third.version, third.removed) == (3, (A,))
    assert store.load() == (store.load().__class__(3, (B, F)))
    log = store.changes()
    assert [(c.version, c.actor, c.kind, c.added, c.removed) for c in log] == [
        (1, "admin", "add", (A, B), ()),
        (2, "admin", "add", (F,), ()),
        (3, "ops", "remove", (), (A,)),
    ]
    assert log[0].changed_at == NOW
    assert [c.version for c in store.changes(since=1, limit=1)] == [2]


def test_a_change_that_changes_nothing_is_not_a_version(store: SqlPolicyStore) -> None:
    store.add([A], actor="admin", now=NOW)
    same = store.add([A], actor="admin", now=NOW)
    assert not same.changed
    assert same.version == 1
    assert not store.remove([B], actor="admin", now=NOW).changed
    assert store.current_version() == 1
    assert len(store.changes()) == 1


def test_replace_logs_what_was_added_and_removed(store: SqlPolicyStore) -> None:
    store.add([A, B], actor="admin", now=NOW)
    change = store.replace([B, F], actor="admin", now=NOW)
    assert (change.version, change.kind, change.added, change.removed) == (2, "replace", (F,), (A,))
    assert set(store.load().rules) == {B, F}
    assert not store.replace([F, B], actor="admin", now=NOW).changed


def test_import_merge_is_logged_as_import(store: SqlPolicyStore) -> None:
    change = store.add([A], actor="admin", now=NOW, kind="import")
    assert store.changes()[0].kind == change.kind == "import"


def test_large_imports_are_chunked(store: SqlPolicyStore) -> None:
    rules = [parse_rule(f"p, sub{i}, dom{i % 50}, cap{i}, invoke") for i in range(2_345)]
    assert len(store.add(rules, actor="admin", now=NOW).added) == 2_345
    assert store.load().rules == tuple(rules)
    assert len(store.remove(rules[:1_200], actor="admin", now=NOW).removed) == 1_200
    assert len(store.load().rules) == 1_145


def test_concurrent_changes_get_distinct_consecutive_versions(store: SqlPolicyStore) -> None:
    rules = [parse_rule(f"p, sub{i}, risk, score, invoke") for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        changes = list(pool.map(lambda r: store.add([r], actor="admin", now=NOW), rules))
    assert sorted(c.version for c in changes) == list(range(1, 13))
    assert store.current_version() == 12
    assert [c.version for c in store.changes(limit=100)] == list(range(1, 13))


def test_unknown_rule_types_in_the_table_are_ignored(store: SqlPolicyStore) -> None:
    store.add([A], actor="admin", now=NOW)
    with store.engine.begin() as conn:
        conn.execute(sa.insert(casbin_rules).values(ptype="p2", v0="x"))
    assert store.load().rules == (A,)


def test_the_default_policy_files_seed_and_load_back(store: SqlPolicyStore) -> None:
    rules = parse_rules((POLICIES / "policy.csv").read_text()) + parse_rules(
        (POLICIES / "flows.csv").read_text()
    )
    store.seed(rules, actor="seed", now=NOW)
    assert store.load().rules == tuple(rules)


# --- the pycasbin adapter ------------------------------------------------------------


def test_a_stock_casbin_enforcer_works_on_the_store(store: SqlPolicyStore) -> None:
    store.seed(
        parse_rules((POLICIES / "policy.csv").read_text() + (POLICIES / "flows.csv").read_text()),
        actor="seed",
        now=NOW,
    )
    adapter = SqlPolicyAdapter(store, actor="ops")
    enforcer = casbin.Enforcer(str(POLICIES / "model.conf"), adapter)
    assert adapter.loaded_version == 1
    assert enforcer.enforce("support", "risk", "score", "invoke")
    assert not enforcer.enforce("cli", "finance", "issue-refund", "invoke")

    # Auto-save: a change through the enforcer is a policy version like any other.
    assert enforcer.add_policy("cli", "finance", "issue-refund", "invoke")
    assert store.current_version() == 2
    assert store.changes(since=1)[0].actor == "ops"
    assert enforcer.remove_policy("cli", "finance", "issue-refund", "invoke")
    assert store.current_version() == 3

    fresh = casbin.Enforcer(str(POLICIES / "model.conf"), SqlPolicyAdapter(store))
    assert not fresh.enforce("cli", "finance", "issue-refund", "invoke")


def test_adapter_filtered_removal_and_save(store: SqlPolicyStore) -> None:
    store.add([A, B, F, parse_rule("p, support, finance, pay, invoke")], actor="a", now=NOW)
    adapter = SqlPolicyAdapter(store)
    assert adapter.remove_filtered_policy("p", "p", 0, "support", "", "score")
    assert set(store.load().rules) == {B, F, parse_rule("p, support, finance, pay, invoke")}
    assert not adapter.remove_filtered_policy("p", "p", 1, "nowhere")

    enforcer = casbin.Enforcer(str(POLICIES / "model.conf"), adapter)
    enforcer.get_model().clear_policy()
    enforcer.get_model().add_policy("p", "p", ["root", "*", "*", "invoke"])
    assert adapter.save_policy(enforcer.get_model())
    # Saving replaces p and g rules; flow rules are not Casbin's and stay.
    assert set(store.load().rules) == {F, parse_rule("p, root, *, *, invoke")}
