"""Shared context through a real gateway: RPCs, the example refund flow, write-backs.

The gateway runs with the real `policies/` files; the example domains (support,
risk, finance) run in-process on the SDK, and the operator calls as `cli`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from pydantic import BaseModel

from domains.finance.app import domain as finance_domain
from domains.risk.app import domain as risk_domain
from domains.sdk import (
    Classification,
    ContextClient,
    Domain,
    GatewayClient,
    TaskContext,
)
from domains.sdk.testing import serve_in_process
from domains.support.app import domain as support_domain
from federation.v1 import audit_pb2 as au
from federation.v1 import audit_pb2_grpc as au_grpc
from gateway.core.audit_query import AuditQuery
from gateway.core.audit_record import AuditRecord
from gateway.core.context.lineage import lineage_dot
from gateway.errors import InvalidRequest, NotFound, PolicyDenied, VersionConflict
from gateway.server import GatewayApp, build_gateway
from gateway.services.audit_convert import lineage_step_from_proto
from gateway.settings import PolicySettings
from tests.integration.gateway.conftest import wait_live
from tests.integration.gateway.policy_helpers import default_policy_settings

C = Classification
REFUND = {"customer_id": "c-1001", "order_id": "o-5001", "amount": 42.5, "reason": "broken"}


@pytest.fixture
async def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GatewayApp]:
    monkeypatch.setenv("FEDGATE_INSECURE", "1")
    app = build_gateway(default_policy_settings(tmp_path))
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


async def records(app: GatewayApp, trace_id: str) -> list[AuditRecord]:
    assert app.audit_writer is not None
    query = AuditQuery(newest_first=False, limit=1000, trace_id=trace_id)
    page = await asyncio.to_thread(app.audit_writer.store.query, query)
    return page.records


def client(app: GatewayApp, domain: str) -> GatewayClient:
    return GatewayClient(app.address, domain=domain, insecure=True)


async def test_put_get_list_history_delete_over_grpc(gateway: GatewayApp) -> None:
    async with client(gateway, "support") as support, client(gateway, "finance") as finance:
        ours, theirs = ContextClient(support), ContextClient(finance)
        first = await ours.put(
            "t-1", "case", {"n": 1}, classification=C.CONFIDENTIAL, expected_version=0
        )
        await ours.put("t-1", "case", {"n": 2}, expected_version=1, classification=C.CONFIDENTIAL)
        await ours.put("t-1", "case/notes", {"x": 1}, classification=C.RESTRICTED)
        assert first.version == 1
        with pytest.raises(VersionConflict, match="current version is 2"):
            await ours.put("t-1", "case", {"n": 3}, expected_version=1)
        with pytest.raises(VersionConflict, match="current version is 2"):
            await ours.put("t-1", "case", {"n": 3}, expected_version=0)
        whole = await theirs.get("t-1", "case")
        assert (whole.redacted, whole.value, whole.item.version) == (False, {"n": 2}, 2)
        assert (await theirs.get("t-1", "case", version=1)).value == {"n": 1}
        listed = await theirs.list_items("t-1", prefix="case")
        assert [(v.item.key, v.redacted) for v in listed] == [("case", False), ("case/notes", True)]
        assert listed[1].value is None
        assert "may not flow" in listed[1].reason
        assert [v.item.version for v in await theirs.history("t-1", "case")] == [1, 2]
        with pytest.raises(PolicyDenied, match="owned by 'support'"):
            await theirs.put("t-1", "case", {"n": 9})
        with pytest.raises(PolicyDenied, match="owned by 'support'"):
            await theirs.delete("t-1", "case")
        gone = await ours.delete("t-1", "case", expected_version=2)
        assert gone.deleted
        assert gone.version == 3
        with pytest.raises(NotFound):
            await theirs.get("t-1", "case")
        with pytest.raises(InvalidRequest, match="context key"):
            await ours.put("t-1", "bad key!", 1)


class Empty(BaseModel):
    pass


def leaky_domain() -> Domain:
    """`leaky/answer` declares internal context but tries to write confidential too."""
    domain = Domain(name="leaky", owner="tests")

    @domain.capability("answer", returns=[C.INTERNAL], timeout=5.0)
    async def answer(ctx: TaskContext, request: Empty) -> Empty:
        await ctx.context.put("leaky/ok", {"fine": True})
        await ctx.context.put("leaky/secret", {"ssn": "123"}, classification=C.CONFIDENTIAL)
        return Empty()

    return domain


async def test_a_write_back_above_the_declared_classification_is_refused_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDGATE_INSECURE", "1")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "policy.csv").write_text(
        "p, *, *, *, invoke\np, *, *, *, register\np, leaky, leaky, *, context.write\n"
        "p, *, *, *, context.read\n"
    )

    app = build_gateway(default_policy_settings(tmp_path, policy=PolicySettings(seed_dir=policies)))
    await app.start()
    try:
        async with (
            serve_in_process(leaky_domain(), gateway=app.address),
            client(app, "caller") as caller,
        ):
            await wait_live(caller, "leaky")
            result = await caller.invoke("leaky/answer", {})
            assert result.state == "failed"
            assert result.error is not None
            assert "declares context up to internal" in result.error.message
            context = ContextClient(client(app, "leaky"))
            ok = await context.get(result.trace_id, "leaky/ok")
            assert ok.item.classification is C.INTERNAL  # classified as declared
            with pytest.raises(NotFound):
                await context.get(result.trace_id, "leaky/secret")
        written = [
            r for r in await records(app, result.trace_id) if r.event_type == "context.written"
        ]
        assert [(r.attribute_values()["key"], r.outcome, r.rule) for r in written] == [
            ("leaky/ok", "written", "p, leaky, leaky, *, context.write"),
            ("leaky/secret", "refused", "capability-declaration"),
        ]
        assert written[1].span_id == result.task_id
        assert written[1].classifications == ("confidential",)
    finally:
        await app.stop(0)


async def test_refund_flow_shares_context_and_redacts_the_notes_for_finance(
    gateway: GatewayApp,
) -> None:
    async with (
        serve_in_process(support_domain, gateway=gateway.address),
        serve_in_process(risk_domain, gateway=gateway.address),
        serve_in_process(finance_domain, gateway=gateway.address),
        client(gateway, "cli") as cli,
        client(gateway, "support") as support,
        client(gateway, "finance") as finance,
    ):
        await wait_live(cli, "support", "risk")
        await wait_live(support, "finance")  # listings show what the caller may invoke
        result = await cli.invoke("support/open-refund-case", {**REFUND, "order_id": "o-5002"})
        assert result.ok, result
        trace = result.trace_id
        views = {v.item.key: v for v in await ContextClient(finance).list_items(trace)}
        assert set(views) == {"case", "case/notes", "risk/score", "finance/refund"}
        assert views["case/notes"].redacted  # restricted: finance never sees it
        assert not views["case"].redacted
        assert views["case"].value["order_id"] == "o-5002"
        assert views["risk/score"].item.version == 2  # support's and finance's own check
        assert (views["risk/score"].item.owner, views["risk/score"].item.classification) == (
            "risk",
            C.INTERNAL,
        )
        assert views["finance/refund"].item.classification is C.CONFIDENTIAL
        # The operator sees risk's verdict (`flow, risk, *, internal`) and nothing else.
        seen = {v.item.key: v.redacted for v in await ContextClient(cli).list_items(trace)}
        assert seen == {
            "case": True,
            "case/notes": True,
            "finance/refund": True,
            "risk/score": False,
        }
    trail = await records(gateway, trace)
    to_finance = [
        r
        for r in trail
        if r.event_type in ("context.read", "context.redacted")
        and r.target_domain == "finance"
        and r.attribute_values()["via"] == "invoke"
    ]
    assert sorted((r.attribute_values()["key"], r.event_type) for r in to_finance) == [
        ("case", "context.read"),
        ("case/notes", "context.redacted"),
        ("risk/score", "context.read"),
    ]
    requested = next(
        r for r in trail if r.event_type == "task.requested" and r.target_domain == "finance"
    )
    crossed = {c["key"]: c["redacted"] for c in requested.attribute_values()["context"]}
    assert crossed == {"case": False, "case/notes": True, "risk/score": False}
    assert requested.classifications == ("confidential", "internal")
    await _check_lineage(gateway, trace, requested.span_id)


async def _check_lineage(gateway: GatewayApp, trace: str, finance_task: str) -> None:
    """The lineage of the refund flow's items, through AuditService.GetLineage."""
    async with client(gateway, "auditor") as auditor, client(gateway, "finance") as finance:
        stub = au_grpc.AuditServiceStub(auditor.channel)
        notes = (
            await stub.GetLineage(au.GetLineageRequest(trace_id=trace, key="case/notes"))
        ).steps
        score = (
            await stub.GetLineage(au.GetLineageRequest(trace_id=trace, key="risk/score"))
        ).steps
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await au_grpc.AuditServiceStub(finance.channel).GetLineage(
                au.GetLineageRequest(trace_id=trace, key="case")
            )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED  # no audit.read
    # support wrote its notes (restricted); finance got them redacted with the task.
    assert [(s.action, s.domain, s.version, s.classification) for s in notes[:2]] == [
        ("written", "support", 1, "restricted"),
        ("redacted", "finance", 1, "restricted"),
    ]
    assert notes[1].task_id == finance_task
    assert notes[1].via == "invoke"
    assert notes[1].actor == "support/agent/refund-request"
    assert [s.seq for s in notes] == sorted(s.seq for s in notes)
    # risk/score: written twice by risk (support's call, finance's own check), read by
    # finance with its task, and by finance's List in this test.
    actions = [(s.action, s.domain, s.version) for s in score]
    assert actions[:3] == [("written", "risk", 1), ("read", "finance", 1), ("written", "risk", 2)]
    assert ("read", "finance", 2) in actions
    assert score[0].content_hash == score[1].content_hash  # the same value crossed
    dot = lineage_dot(trace, "case/notes", [lineage_step_from_proto(s) for s in notes])
    assert dot.startswith("digraph lineage {")
    assert '"support" -> "item:case/notes"' in dot
    assert '"item:case/notes" -> "finance"' in dot
    assert "dashed" in dot
