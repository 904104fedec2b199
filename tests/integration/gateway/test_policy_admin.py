"""PolicyAdmin RPCs: authorized and unauthorized, versions, change log, immediate effect."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest

from domains.sdk.testing import eventually, serve_in_process
from federation.v1 import policy_pb2 as pol
from gateway.core.audit_event import AuditEvent, EventType
from gateway.errors import PolicyDenied
from gateway.server import GatewayApp, build_gateway

from .policy_helpers import (
    admin_stub,
    client_as,
    counting_domain,
    default_policy_settings,
    identity,
)

REFUND = {"case_id": "case-1", "customer_id": "c-1", "order_id": "o-1", "amount": 10}
OPERATOR_PAYS = pol.PolicyRule(ptype="p", values=["cli", "finance", "issue-refund", "invoke"])


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayApp]:
    app = build_gateway(default_policy_settings(tmp_path))
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


@pytest.fixture
async def channel(gateway: GatewayApp) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gateway.address) as ch:
        yield ch


async def _denied(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    return info.value.details() or ""


async def test_the_database_was_seeded_from_the_policy_files(channel: grpc.aio.Channel) -> None:
    listed = await admin_stub(channel).ListPolicies(
        pol.ListPoliciesRequest(), metadata=identity("admin")
    )
    assert listed.version == 1
    assert pol.PolicyRule(ptype="p", values=["cli", "support", "open-refund-case", "invoke"]) in (
        listed.rules
    )
    assert any(r.ptype == "flow" for r in listed.rules)
    changes = await admin_stub(channel).ListChanges(
        pol.ListChangesRequest(), metadata=identity("admin")
    )
    assert [(c.version, c.actor, c.kind) for c in changes.changes] == [(1, "seed", "seed")]


async def test_an_admin_change_takes_effect_at_once_and_is_recorded(
    gateway: GatewayApp, channel: grpc.aio.Channel
) -> None:
    finance = counting_domain("finance", "issue-refund")
    async with (
        serve_in_process(finance, gateway=gateway.address),
        client_as(gateway.address, "cli") as operator,
        client_as(gateway.address, "support") as support,
    ):

        async def live() -> bool:
            return [d.name for d in await support.list_domains()] == ["finance"]

        await eventually(live, timeout=10)
        with pytest.raises(PolicyDenied):  # also fills the decision cache with a denial
            await operator.invoke("finance/issue-refund", REFUND)

        stub = admin_stub(channel)
        change = await stub.AddPolicy(
            pol.ChangePolicyRequest(rules=[OPERATOR_PAYS]), metadata=identity("admin")
        )
        assert (change.version, change.changed, change.actor, change.kind) == (
            2,
            True,
            "admin",
            "add",
        )
        assert list(change.added) == [OPERATOR_PAYS]
        assert change.HasField("changed_at")
        # The cached denial is gone with the old version: allowed on the very next call.
        assert (await operator.invoke("finance/issue-refund", REFUND)).ok
        assert finance.calls == 1  # type: ignore[attr-defined]

        again = await stub.AddPolicy(
            pol.ChangePolicyRequest(rules=[OPERATOR_PAYS]), metadata=identity("admin")
        )
        assert (again.version, again.changed) == (2, False)

        removed = await stub.RemovePolicy(
            pol.ChangePolicyRequest(rules=[OPERATOR_PAYS]), metadata=identity("admin")
        )
        assert (removed.version, list(removed.removed)) == (3, [OPERATOR_PAYS])
        with pytest.raises(PolicyDenied):
            await operator.invoke("finance/issue-refund", REFUND)
        assert finance.calls == 1  # type: ignore[attr-defined]

    log = await stub.ListChanges(
        pol.ListChangesRequest(since_version=1), metadata=identity("admin")
    )
    assert [(c.version, c.actor, c.kind) for c in log.changes] == [
        (2, "admin", "add"),
        (3, "admin", "remove"),
    ]


async def test_changes_need_policy_admin_on_the_rules_domain(channel: grpc.aio.Channel) -> None:
    stub = admin_stub(channel)
    details = await _denied(
        stub.AddPolicy(pol.ChangePolicyRequest(rules=[OPERATOR_PAYS]), metadata=identity("cli"))
    )
    assert details == "cli may not policy.admin finance (needs policy.admin on finance)"
    for call in (
        stub.RemovePolicy(
            pol.ChangePolicyRequest(rules=[OPERATOR_PAYS]), metadata=identity("support")
        ),
        stub.ImportPolicies(
            pol.ImportPoliciesRequest(text="p, a1, b1, c, invoke\n"), metadata=identity("support")
        ),
        stub.ListPolicies(pol.ListPoliciesRequest(), metadata=identity("auditor")),
        stub.ExportPolicies(pol.ExportPoliciesRequest(), metadata=identity("finance")),
        stub.ListChanges(pol.ListChangesRequest(), metadata=identity("finance")),
        stub.Explain(
            pol.CheckRequest(
                subject="support", domain="finance", object="issue-refund", action="invoke"
            ),
            metadata=identity("risk"),
        ),
    ):
        assert "needs policy.admin on" in await _denied(call)
    version = await stub.ListPolicies(pol.ListPoliciesRequest(), metadata=identity("admin"))
    assert version.version == 1  # nothing changed


async def test_a_domain_admin_administers_only_its_domain(channel: grpc.aio.Channel) -> None:
    stub = admin_stub(channel)
    await stub.AddPolicy(
        pol.ChangePolicyRequest(
            rules=[
                pol.PolicyRule(
                    ptype="p", values=["finance-admins", "finance", "*", "policy.admin"]
                ),
                pol.PolicyRule(ptype="g", values=["finance", "finance-admins", "finance"]),
            ]
        ),
        metadata=identity("admin"),
    )
    own = await stub.AddPolicy(
        pol.ChangePolicyRequest(rules=[OPERATOR_PAYS]), metadata=identity("finance")
    )
    assert (own.version, own.actor) == (3, "finance")
    listed = await stub.ListPolicies(
        pol.ListPoliciesRequest(domain="finance", ptype="p"), metadata=identity("finance")
    )
    assert OPERATOR_PAYS in listed.rules
    assert all(r.values[1] == "finance" for r in listed.rules)
    other = pol.PolicyRule(ptype="p", values=["cli", "risk", "recalibrate", "invoke"])
    details = await _denied(
        stub.AddPolicy(
            pol.ChangePolicyRequest(rules=[OPERATOR_PAYS, other]), metadata=identity("finance")
        )
    )
    assert details == "finance may not policy.admin risk (needs policy.admin on risk)"
    assert "needs policy.admin on *" in await _denied(
        stub.ListPolicies(pol.ListPoliciesRequest(), metadata=identity("finance"))
    )


async def test_export_import_round_trip_and_replace(channel: grpc.aio.Channel) -> None:
    stub = admin_stub(channel)
    exported = await stub.ExportPolicies(pol.ExportPoliciesRequest(), metadata=identity("admin"))
    assert exported.version == 1
    assert "p, cli, support, open-refund-case, invoke\n" in exported.text

    merged = await stub.ImportPolicies(
        pol.ImportPoliciesRequest(text="# more\np, cli, finance, issue-refund, invoke\n"),
        metadata=identity("admin"),
    )
    assert (merged.version, merged.kind, len(merged.added)) == (2, "import", 1)

    replaced = await stub.ImportPolicies(
        pol.ImportPoliciesRequest(text=exported.text, replace=True), metadata=identity("admin")
    )
    assert (replaced.version, replaced.kind, list(replaced.removed)) == (
        3,
        "replace",
        [OPERATOR_PAYS],
    )
    again = await stub.ExportPolicies(pol.ExportPoliciesRequest(), metadata=identity("admin"))
    assert sorted(again.text.splitlines()) == sorted(exported.text.splitlines())


async def test_bad_rules_are_invalid_argument(channel: grpc.aio.Channel) -> None:
    stub = admin_stub(channel)
    for call, detail in (
        (
            stub.AddPolicy(
                pol.ChangePolicyRequest(rules=[pol.PolicyRule(ptype="p", values=["a1", "b1"])]),
                metadata=identity("admin"),
            ),
            "has 4 values, got 2",
        ),
        (
            stub.ImportPolicies(
                pol.ImportPoliciesRequest(text="p, a1, b1, c, invoke\np, a1, b1, c, fly\n"),
                metadata=identity("admin"),
            ),
            "import:2: unknown action 'fly'",
        ),
        (stub.AddPolicy(pol.ChangePolicyRequest(), metadata=identity("admin")), "no rules given"),
        (
            stub.Check(
                pol.CheckRequest(subject="cli", domain="risk", object="score", action="jump"),
                metadata=identity("cli"),
            ),
            "unknown action 'jump'",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert detail in (info.value.details() or "")


async def test_check_and_explain(channel: grpc.aio.Channel) -> None:
    stub = admin_stub(channel)
    # Anyone may ask about themselves (and their agents).
    own = await stub.Check(
        pol.CheckRequest(subject="cli", domain="finance", object="issue-refund", action="invoke"),
        metadata=identity("cli"),
    )
    assert (own.allowed, own.rule, own.version) == (False, "default-deny", 1)
    assert (
        own.reason
        == "cli may not invoke finance/issue-refund (needs invoke on finance/issue-refund)"
    )
    explained = await stub.Explain(
        pol.CheckRequest(
            subject="support/agent/risk-assessment", domain="risk", object="score", action="invoke"
        ),
        metadata=identity("admin"),
    )
    assert explained.allowed
    assert explained.rule == "p, risk-client, risk, score, invoke"
    assert list(explained.matching_rules) == [
        pol.PolicyRule(ptype="p", values=["risk-client", "risk", "score", "invoke"])
    ]
    assert list(explained.subjects) == ["support", "support/agent/risk-assessment"]
    assert list(explained.roles) == ["risk-client in risk"]


class RecordingSink:
    """An audit sink that keeps the events (no durable log, so no receipts)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, events: list[AuditEvent]) -> Sequence[object]:
        self.events.extend(events)
        return ()


async def test_admin_decisions_and_changes_are_audited(tmp_path: Path) -> None:
    sink = RecordingSink()
    app = build_gateway(default_policy_settings(tmp_path), audit=sink)
    await app.start()
    try:
        async with grpc.aio.insecure_channel(app.address) as channel:
            stub = admin_stub(channel)
            await _denied(
                stub.AddPolicy(
                    pol.ChangePolicyRequest(rules=[OPERATOR_PAYS]), metadata=identity("cli")
                )
            )
            await stub.AddPolicy(
                pol.ChangePolicyRequest(rules=[OPERATOR_PAYS]), metadata=identity("admin")
            )
    finally:
        await app.stop(0)
    policy_events = [e for e in sink.events if e.type.value.startswith("policy.")]
    assert [(e.type, e.actor, e.decision, e.target_domain, e.outcome) for e in policy_events] == [
        (EventType.POLICY_DECISION, "cli", "deny", "finance", "refused"),
        (EventType.POLICY_DECISION, "admin", "allow", "finance", "allowed"),
        (EventType.POLICY_CHANGED, "admin", "allow", "finance", "add"),
    ]
    refused, _, changed = policy_events
    assert refused.rule == "default-deny"
    assert refused.attributes["operation"] == "add"
    assert changed.policy_version == 2
    assert changed.rule == "p, policy-admins, *, *, policy.admin"
    assert changed.attributes["added"] == ["p, cli, finance, issue-refund, invoke"]
