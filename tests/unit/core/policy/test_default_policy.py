"""Table-driven tests of the real `policies/` files: every row, request -> decision.

Each `p` line of policy.csv is exercised by at least one allowed row below (a test
checks that), and the denials the federation relies on are pinned too.
"""

from __future__ import annotations

import pytest

from gateway.core.decision import Action
from gateway.core.models import Classification, Principal
from gateway.core.policy import CasbinPolicy, parse_rules, principal_of

from .conftest import FLOWS_CSV, POLICY_CSV

INV, R, A, P = Action.INVOKE, Action.REGISTER, Action.AUDIT_READ, Action.POLICY_ADMIN
CR, CW = Action.CONTEXT_READ, Action.CONTEXT_WRITE
RSP = Action.RESPOND

# (subject, target domain, object, action, allowed, rule that allows it or "")
DECISIONS: list[tuple[str, str, str, Action, bool, str]] = [
    # registration: each domain only itself
    ("support", "support", "*", R, True, "p, support, support, *, register"),
    ("risk", "risk", "*", R, True, "p, risk, risk, *, register"),
    ("finance", "finance", "*", R, True, "p, finance, finance, *, register"),
    ("support", "finance", "*", R, False, ""),
    ("finance", "risk", "*", R, False, ""),
    ("cli", "cli", "*", R, False, ""),
    # the refund flow
    ("cli", "support", "open-refund-case", INV, True, "p, cli, support, open-refund-case, invoke"),
    ("support", "finance", "issue-refund", INV, True, "p, support, finance, issue-refund, invoke"),
    ("support", "risk", "score", INV, True, "p, risk-client, risk, score, invoke"),
    ("finance", "risk", "score", INV, True, "p, risk-client, risk, score, invoke"),
    ("cli", "risk", "score", INV, True, "p, risk-client, risk, score, invoke"),
    # agents act with their domain's permissions
    (
        "support/agent/risk-assessment",
        "risk",
        "score",
        INV,
        True,
        "p, risk-client, risk, score, invoke",
    ),
    (
        "support/agent/refund-request",
        "finance",
        "issue-refund",
        INV,
        True,
        "p, support, finance, issue-refund, invoke",
    ),
    ("finance/agent/risk-check", "risk", "score", INV, True, "p, risk-client, risk, score, invoke"),
    # realistic denials
    ("cli", "finance", "issue-refund", INV, False, ""),  # the operator bypassing support (demo)
    ("risk", "finance", "issue-refund", INV, False, ""),
    ("finance", "support", "open-refund-case", INV, False, ""),
    ("risk", "risk", "score", INV, False, ""),  # no rule lets a domain call itself
    ("support", "risk", "other", INV, False, ""),
    ("risk-client", "finance", "issue-refund", INV, False, ""),  # roles hold per domain
    ("support", "support", "open-refund-case", INV, False, ""),
    ("risk/agent/model-scorer", "finance", "issue-refund", INV, False, ""),
    # shared context: owners write their own, the flow's domains read each other's
    ("support", "support", "case", CW, True, "p, support, support, *, context.write"),
    ("risk", "risk", "score", CW, True, "p, risk, risk, *, context.write"),
    ("finance", "finance", "refund", CW, True, "p, finance, finance, *, context.write"),
    ("finance", "support", "case", CR, True, "p, finance, *, *, context.read"),
    ("support/agent/intake", "support", "notes", CR, True, "p, support, *, *, context.read"),
    ("risk", "support", "case", CR, True, "p, risk, *, *, context.read"),
    ("cli", "support", "case", CR, True, "p, cli, *, *, context.read"),
    ("risk", "support", "case", CW, False, ""),  # nobody writes into another domain
    ("cli", "cli", "note", CW, False, ""),
    ("auditor", "support", "case", CR, False, ""),  # compliance reads the trail, not values
    ("ghost", "support", "case", CR, False, ""),
    # human approvals of escalated tasks (fedgate task respond)
    (
        "approver",
        "support",
        "open-refund-case",
        RSP,
        True,
        "p, approver, support, open-refund-case, respond",
    ),
    (
        "approver",
        "finance",
        "issue-refund",
        RSP,
        True,
        "p, approver, finance, issue-refund, respond",
    ),
    ("cli", "support", "open-refund-case", RSP, False, ""),  # no approving one's own case
    ("support", "finance", "issue-refund", RSP, False, ""),
    ("approver", "risk", "score", RSP, False, ""),
    ("approver", "support", "open-refund-case", INV, False, ""),  # approves, never invokes
    ("auditor", "support", "open-refund-case", RSP, False, ""),
    # compliance and administration
    ("auditor", "finance", "*", A, True, "p, auditors, *, *, audit.read"),
    ("auditor", "*", "*", A, True, "p, auditors, *, *, audit.read"),
    ("auditor", "finance", "*", P, False, ""),
    ("auditor", "risk", "score", INV, False, ""),
    ("admin", "support", "*", P, True, "p, policy-admins, *, *, policy.admin"),
    ("admin", "*", "*", P, True, "p, policy-admins, *, *, policy.admin"),
    ("admin", "risk", "*", A, False, ""),
    ("admin", "risk", "score", INV, False, ""),
    ("support", "support", "*", P, False, ""),
    ("support", "*", "*", A, False, ""),
    ("ghost", "risk", "score", INV, False, ""),
]


@pytest.mark.parametrize(
    ("subject", "domain", "obj", "action", "allowed", "rule"),
    DECISIONS,
    ids=[f"{s}-{a.value}-{d}/{o}" for s, d, o, a, _, _ in DECISIONS],
)
def test_default_policy_decides(
    default_policy: CasbinPolicy,
    subject: str,
    domain: str,
    obj: str,
    action: Action,
    allowed: bool,
    rule: str,
) -> None:
    decision = default_policy.decide(principal_of(subject), domain, obj, action)
    assert decision.allowed is allowed, decision.reason
    if allowed:
        assert decision.rule == rule
    else:
        target = domain if obj == "*" else f"{domain}/{obj}"
        assert decision.rule == "default-deny"
        assert decision.reason == (
            f"{subject} may not {action.value} {target} (needs {action.value} on {target})"
        )


def test_every_allow_rule_of_policy_csv_is_exercised() -> None:
    rules = {str(r) for r in parse_rules(POLICY_CSV.read_text()) if r.ptype == "p"}
    exercised = {rule for *_, allowed, rule in DECISIONS if allowed}
    assert rules - exercised == set(), "add a row for each p line of policy.csv"
    assert exercised - rules == set()


def test_denial_names_the_missing_permission(default_policy: CasbinPolicy) -> None:
    decision = default_policy.decide(Principal("support"), "finance", "wire-money", INV)
    assert decision.reason == (
        "support may not invoke finance/wire-money (needs invoke on finance/wire-money)"
    )


C = Classification
# (from, to, classification, allowed, deciding rule)
FLOWS: list[tuple[str, str, Classification, bool, str]] = [
    ("support", "support", C.RESTRICTED, True, "same-domain"),
    ("support", "risk", C.PUBLIC, True, "flow, support, risk, confidential"),
    ("support", "risk", C.CONFIDENTIAL, True, "flow, support, risk, confidential"),
    ("support", "risk", C.RESTRICTED, False, "default-deny"),
    ("support", "finance", C.CONFIDENTIAL, True, "flow, support, finance, confidential"),
    ("finance", "risk", C.CONFIDENTIAL, True, "flow, finance, risk, confidential"),
    ("finance", "support", C.INTERNAL, True, "flow, finance, support, internal"),
    ("finance", "support", C.CONFIDENTIAL, False, "default-deny"),
    ("risk", "support", C.INTERNAL, True, "flow, risk, *, internal"),
    ("risk", "finance", C.INTERNAL, True, "flow, risk, *, internal"),
    ("risk", "finance", C.CONFIDENTIAL, False, "default-deny"),
    ("risk", "cli", C.PUBLIC, True, "flow, risk, *, internal"),
    ("support", "cli", C.PUBLIC, True, "flow, *, *, public"),
    ("support", "cli", C.INTERNAL, False, "default-deny"),
    ("finance", "cli", C.INTERNAL, False, "default-deny"),
]


@pytest.mark.parametrize(("source", "target", "classification", "allowed", "rule"), FLOWS)
def test_default_flows_decide(
    default_policy: CasbinPolicy,
    source: str,
    target: str,
    classification: Classification,
    allowed: bool,
    rule: str,
) -> None:
    decision = default_policy.may_flow(source, target, classification)
    assert (decision.allowed, decision.rule) == (allowed, rule), decision.reason


def test_every_flow_rule_of_flows_csv_is_exercised() -> None:
    rules = {str(r) for r in parse_rules(FLOWS_CSV.read_text())}
    exercised = {rule for *_, allowed, rule in FLOWS if allowed} - {"same-domain"}
    assert rules == exercised


def test_flow_denial_says_what_is_allowed(default_policy: CasbinPolicy) -> None:
    denied = default_policy.may_flow("finance", "support", C.RESTRICTED)
    assert denied.reason == (
        "restricted context may not flow from finance to support: at most internal may "
        "(flow, finance, support, internal; needs flow, finance, support, restricted or higher)"
    )
