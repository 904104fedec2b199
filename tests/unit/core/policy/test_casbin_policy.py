"""CasbinPolicy: principals and agents, wildcards, roles, cache, versions, reloads."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from gateway.core.decision import Action
from gateway.core.models import Classification, Principal
from gateway.core.policy import CasbinPolicy, compile_policy, parse_rules

from .conftest import MODEL

MODEL_TEXT = MODEL.read_text()
INV = Action.INVOKE


def policy(text: str, version: int = 1) -> CasbinPolicy:
    return CasbinPolicy(MODEL_TEXT, parse_rules(text), version=version)


def test_deny_by_default() -> None:
    empty = policy("")
    decision = empty.decide(Principal("support"), "risk", "score", INV)
    assert not decision.allowed
    assert decision.policy_version == 1


def test_agent_rule_adds_to_its_domain_but_not_to_other_agents() -> None:
    p = policy("p, support/agent/payer, finance, issue-refund, invoke\n")
    assert p.decide(Principal("support", "agent/payer"), "finance", "issue-refund", INV).allowed
    assert not p.decide(Principal("support"), "finance", "issue-refund", INV).allowed
    assert not p.decide(Principal("support", "agent/other"), "finance", "issue-refund", INV).allowed
    decision = p.decide(Principal("support", "agent/payer"), "finance", "issue-refund", INV)
    assert decision.rule == "p, support/agent/payer, finance, issue-refund, invoke"


def test_agent_of_one_domain_gets_nothing_from_an_agent_rule_of_another() -> None:
    p = policy("p, support/agent/payer, finance, issue-refund, invoke\n")
    assert not p.decide(Principal("risk", "agent/payer"), "finance", "issue-refund", INV).allowed


def test_object_and_domain_wildcards() -> None:
    p = policy(
        "p, support, risk, *, invoke\np, watcher, *, health, invoke\np, root, *, *, invoke\n"
    )
    assert p.decide(Principal("support"), "risk", "anything", INV).allowed
    assert not p.decide(Principal("support"), "finance", "anything", INV).allowed
    assert p.decide(Principal("watcher"), "finance", "health", INV).allowed
    assert not p.decide(Principal("watcher"), "finance", "score", INV).allowed
    assert p.decide(Principal("root"), "finance", "score", INV).allowed
    # A wildcard in a request matches only a wildcard rule, never every rule.
    assert not p.decide(Principal("support"), "*", "score", INV).allowed


def test_roles_hold_in_the_domain_they_were_granted_in() -> None:
    p = policy(
        "p, scorers, risk, score, invoke\n"
        "p, scorers, finance, quote, invoke\n"
        "g, support, scorers, risk\n"
        "p, admins, *, *, policy.admin\n"
        "g, alice, admins, *\n"
        "g, bob, admins, risk\n"
    )
    assert p.decide(Principal("support"), "risk", "score", INV).allowed
    assert not p.decide(Principal("support"), "finance", "quote", INV).allowed
    assert p.decide(Principal("alice"), "risk", "*", Action.POLICY_ADMIN).allowed
    # A role granted in one domain does not satisfy a federation-wide rule.
    assert not p.decide(Principal("bob"), "risk", "*", Action.POLICY_ADMIN).allowed


def test_role_hierarchy() -> None:
    p = policy(
        "p, readers, risk, score, invoke\ng, writers, readers, risk\ng, support, writers, risk\n"
    )
    assert p.decide(Principal("support"), "risk", "score", INV).allowed


def test_explain_lists_every_allowing_rule_and_roles() -> None:
    p = policy(
        "p, support, risk, score, invoke\n"
        "p, support, risk, *, invoke\n"
        "p, scorers, risk, score, invoke\n"
        "g, support, scorers, risk\n"
        "p, support/agent/a, risk, score, invoke\n"
    )
    explanation = p.explain(Principal("support", "agent/a"), "risk", "score", INV)
    assert explanation.decision.allowed
    assert [str(r) for r in explanation.matching_rules] == [
        "p, scorers, risk, score, invoke",
        "p, support, risk, *, invoke",
        "p, support, risk, score, invoke",
        "p, support/agent/a, risk, score, invoke",
    ]
    assert explanation.subjects == ("support", "support/agent/a")
    assert explanation.roles == ("scorers in risk",)


def test_explain_a_denial() -> None:
    explanation = policy("").explain(Principal("cli"), "finance", "issue-refund", INV)
    assert not explanation.decision.allowed
    assert explanation.matching_rules == ()
    assert "needs invoke on finance/issue-refund" in explanation.decision.reason


def test_decisions_are_cached_per_policy_build() -> None:
    p = policy("p, support, risk, score, invoke\n")
    first = p.decide(Principal("support"), "risk", "score", INV)
    assert p.decide(Principal("support"), "risk", "score", INV) is first
    assert p.cache.hits == 1


def test_a_new_version_invalidates_cached_decisions() -> None:
    p = policy("p, support, risk, score, invoke\n", version=1)
    assert p.decide(Principal("support"), "risk", "score", INV).allowed
    assert p.load(parse_rules(""), version=2)
    decision = p.decide(Principal("support"), "risk", "score", INV)
    assert not decision.allowed
    assert decision.policy_version == 2


def test_a_stale_version_is_not_installed_unless_forced() -> None:
    p = policy("p, support, risk, score, invoke\n", version=5)
    assert not p.load(parse_rules(""), version=5)
    assert not p.load(parse_rules(""), version=4)
    assert p.version == 5
    assert p.decide(Principal("support"), "risk", "score", INV).allowed
    assert p.load(parse_rules(""), version=4, force=True)
    assert not p.decide(Principal("support"), "risk", "score", INV).allowed


def test_cache_is_bounded() -> None:
    p = CasbinPolicy(MODEL_TEXT, parse_rules("p, a1, risk, *, invoke\n"), cache_size=10)
    for n in range(50):
        p.decide(Principal("a1"), "risk", f"cap{n}", INV)
    assert len(p.cache) == 10


def test_flows_come_from_the_same_rules() -> None:
    p = policy("flow, support, risk, internal\n", version=3)
    decision = p.may_flow("support", "risk", Classification.INTERNAL)
    assert decision.allowed
    assert decision.policy_version == 3
    assert not p.may_flow("support", "risk", Classification.CONFIDENTIAL).allowed
    assert not p.may_flow("risk", "support", Classification.PUBLIC).allowed


def _big_rules(n: int) -> str:
    lines = [f"p, role{i % 10}, dom{i % 50}, cap{i % 200}, invoke" for i in range(n)]
    lines += [f"g, sub{i}, role{i % 10}, dom{i % 50}" for i in range(n)]
    return "\n".join(lines) + "\np, support, risk, score, invoke\n"


def test_reload_under_load_never_serves_an_empty_or_partial_policy() -> None:
    """Decisions keep flowing while a large policy compiles in a thread, then switch at once."""
    p = policy(_big_rules(20_000), version=1)
    next_rules = parse_rules(_big_rules(60_000))
    support = Principal("support")
    done = threading.Event()
    errors: list[BaseException] = []

    def reload() -> None:
        try:
            compiled = compile_policy(MODEL_TEXT, next_rules, 2)
            p.install(compiled)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=reload)
    versions: list[int] = []
    served_at: list[float] = [time.monotonic()]
    worker.start()
    while not done.is_set():
        # Distinct objects miss the cache, so each is a real decision on the live policy.
        decision = p.decide(support, "risk", "score", INV)
        assert decision.allowed, decision.reason
        versions.append(decision.policy_version)
        assert p.decide(support, "risk", f"x{len(versions)}", INV).allowed is False
        served_at.append(time.monotonic())
    worker.join()
    assert errors == []
    assert len(versions) > 0
    # Never blocked for long: the build runs beside the decisions, not instead of them.
    assert max(b - a for a, b in itertools.pairwise(served_at)) < 0.5
    assert p.version == 2
    assert p.decide(support, "risk", "score", INV).policy_version == 2
    assert versions == sorted(versions)  # never back to an older version


@pytest.mark.parametrize("subject", ["support", "support/agent/x"])
def test_decide_is_safe_from_several_threads(subject: str) -> None:
    p = policy(_big_rules(2_000))
    principal = Principal(*subject.split("/", 1)) if "/" in subject else Principal(subject)
    results: list[bool] = []

    def work() -> None:
        for n in range(300):
            results.append(p.decide(principal, "risk", "score", INV).allowed)
            p.decide(principal, f"dom{n % 50}", f"cap{n}", INV)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 1200


def test_a_subject_wildcard_opens_a_capability_to_every_principal() -> None:
    p = policy("p, *, risk, health, invoke\n")
    assert p.decide(Principal("anyone"), "risk", "health", INV).allowed
    assert p.decide(Principal("x1", "agent/y"), "risk", "health", INV).allowed
    assert not p.decide(Principal("anyone"), "risk", "score", INV).allowed
