"""Property: the fast path (FastEnforcer buckets + compiled matcher) decides exactly as the
plain `casbin.Enforcer`, which evaluates every rule with pycasbin's own evaluator."""

from __future__ import annotations

import random

import casbin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.decision import Action
from gateway.core.policy import CasbinPolicy, PolicyRule, compile_policy, principal_of
from gateway.core.policy.compiled import RuleListAdapter

from .conftest import MODEL

MODEL_TEXT = MODEL.read_text()

SUBJECTS = ["a1", "b1", "c1", "a1/agent/x"]
ROLES = ["role1", "role2"]
RULE_DOMAINS = ["d1", "d2", "*"]
REQUEST_DOMAINS = ["d1", "d2", "d3", "*"]
RULE_OBJECTS = ["o1", "o2", "*"]
REQUEST_OBJECTS = ["o1", "o2", "o3", "*"]
ACTIONS = ["invoke", "register"]

p_rules = st.builds(
    lambda *v: PolicyRule("p", v),
    st.sampled_from([*SUBJECTS, *ROLES, "*"]),
    st.sampled_from(RULE_DOMAINS),
    st.sampled_from(RULE_OBJECTS),
    st.sampled_from(ACTIONS),
)
g_rules = st.builds(
    lambda *v: PolicyRule("g", v),
    st.sampled_from([*SUBJECTS, *ROLES]),
    st.sampled_from(ROLES),
    st.sampled_from(RULE_DOMAINS),
)
requests = st.tuples(
    st.sampled_from(SUBJECTS),
    st.sampled_from(REQUEST_DOMAINS),
    st.sampled_from(REQUEST_OBJECTS),
    st.sampled_from(ACTIONS),
)


def plain_enforcer(rules: list[PolicyRule]) -> casbin.Enforcer:
    return casbin.Enforcer(casbin.Enforcer.new_model(text=MODEL_TEXT), RuleListAdapter(rules))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(st.one_of(p_rules, g_rules), max_size=25, unique=True),
    asked=st.lists(requests, min_size=1, max_size=20),
)
def test_fast_path_and_plain_enforcer_agree(
    rules: list[PolicyRule], asked: list[tuple[str, str, str, str]]
) -> None:
    fast = compile_policy(MODEL_TEXT, rules, 1)
    plain = plain_enforcer(rules)
    for sub, dom, obj, act in asked:
        assert fast.enforce(sub, dom, obj, act)[0] == plain.enforce(sub, dom, obj, act), (
            sub,
            dom,
            obj,
            act,
        )


@settings(max_examples=100, deadline=None)
@given(
    rules=st.lists(st.one_of(p_rules, g_rules), max_size=25, unique=True),
    asked=st.lists(requests, min_size=1, max_size=10),
)
def test_principal_decisions_follow_domain_then_agent(
    rules: list[PolicyRule], asked: list[tuple[str, str, str, str]]
) -> None:
    policy = CasbinPolicy(MODEL_TEXT, rules, version=1)
    plain = plain_enforcer(rules)
    for sub, dom, obj, act in asked:
        principal = principal_of(sub)
        subjects = [principal.domain] + ([sub] if principal.agent else [])
        expected = any(plain.enforce(s, dom, obj, act) for s in subjects)
        assert policy.decide(principal, dom, obj, Action(act)).allowed == expected


def test_agree_on_a_large_generated_policy() -> None:
    rnd = random.Random(3)
    rules = [
        PolicyRule("p", (f"role{i % 7}", f"dom{i % 20}", f"cap{i % 40}", "invoke"))
        for i in range(1_500)
    ]
    rules += [
        PolicyRule("g", (f"caller{i % 300}", f"role{i % 7}", f"dom{i % 20}")) for i in range(1_500)
    ]
    rules += [
        PolicyRule("p", ("auditors", "*", "*", "audit.read")),
        PolicyRule("g", ("caller1", "auditors", "*")),
        PolicyRule("p", ("*", "dom3", "health", "invoke")),
    ]
    fast = compile_policy(MODEL_TEXT, rules, 1)
    plain = plain_enforcer(rules)
    for _ in range(300):
        request = (
            f"caller{rnd.randrange(320)}",
            rnd.choice([f"dom{rnd.randrange(22)}", "*"]),
            rnd.choice([f"cap{rnd.randrange(42)}", "health", "*"]),
            rnd.choice(["invoke", "audit.read"]),
        )
        assert fast.enforce(*request)[0] == plain.enforce(*request), request
