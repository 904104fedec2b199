"""AuditService over gRPC: scoped queries, traces, proofs and exports, checked offline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from domains.sdk import GatewayClient
from domains.sdk.testing import eventually, serve_in_process
from federation.v1 import audit_pb2 as au
from federation.v1 import audit_pb2_grpc as au_grpc
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.audit.keys import read_verifiers
from gateway.cli.main import app as cli
from gateway.core.audit_proof import check_consistency, check_export, check_inclusion
from gateway.core.audit_record import leaf_hash_of
from gateway.core.signed_note import NoteVerifier
from gateway.server import GatewayApp, build_gateway
from gateway.services import metadata
from gateway.services.audit_convert import consistency_bundle, inclusion_bundle
from gateway.settings import AuditSettings, PolicySettings
from tests.integration.gateway.conftest import echo_domain, gateway_settings, wait_live

from .conftest import event

POLICIES = Path(__file__).with_name("policies")


@pytest.fixture
async def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GatewayApp]:
    monkeypatch.setenv("FEDGATE_INSECURE", "1")
    settings = gateway_settings(
        tmp_path,
        policy=PolicySettings(seed_dir=POLICIES),
        audit=AuditSettings(checkpoint_every_seconds=0.05),
    )
    app = build_gateway(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop(0)


def stub(app: GatewayApp, who: str) -> tuple[grpc.aio.Channel, au_grpc.AuditServiceAsyncStub]:
    channel = grpc.aio.insecure_channel(app.address)
    return channel, au_grpc.AuditServiceStub(channel)


def who(name: str) -> tuple[tuple[str, str]]:
    return ((metadata.CALLER_DOMAIN, name),)


def key_of(app: GatewayApp) -> list[NoteVerifier]:
    settings = app.settings
    return read_verifiers([settings.audit.signing_key_file(settings.state_dir).with_suffix(".pub")])


async def checkpointed(app: GatewayApp) -> None:
    assert app.audit_writer is not None
    store = app.audit_writer.store

    async def done() -> bool:
        head = await asyncio.to_thread(store.head)
        return head.size > 0 and head.checkpoint_size == head.size

    await eventually(done, timeout=10, message="no checkpoint covers the log")


async def test_a_call_returns_receipts_and_its_records_are_provable(gateway: GatewayApp) -> None:
    async with serve_in_process(echo_domain(), gateway=gateway.address):
        async with GatewayClient(gateway.address, domain="caller", insecure=True) as client:
            await wait_live(client, "echo")
        channel = grpc.aio.insecure_channel(gateway.address)
        try:
            call = gw_grpc.FederationGatewayStub(channel).Invoke(
                gw.InvokeRequest(
                    target=pb.CapabilityRef(domain="echo", name="echo"),
                    input=pb.Payload(data=b'{"text": "hi"}', content_type="application/json"),
                ),
                metadata=who("caller"),
            )
            await call
            trailing = await call.trailing_metadata()
        finally:
            await channel.close()
    receipts = [metadata.decode_receipt(v) for k, v in trailing if k == metadata.AUDIT_RECEIPT]
    assert len(receipts) == 2  # task.requested, then task.finished
    await checkpointed(gateway)
    channel, audit = stub(gateway, "auditor")
    try:
        for seq, leaf in receipts:
            proof = await audit.ProveInclusion(
                au.ProveInclusionRequest(seq=seq), metadata=who("auditor")
            )
            bundle = inclusion_bundle(proof)
            assert leaf_hash_of(bundle.record) == leaf
            check_inclusion(bundle, key_of(gateway))
        types = [
            (
                await audit.ProveInclusion(au.ProveInclusionRequest(seq=s), metadata=who("auditor"))
            ).record.event_type
            for s, _ in receipts
        ]
        assert types == ["task.requested", "task.finished"]
    finally:
        await channel.close()


async def test_queries_are_scoped_by_audit_read(gateway: GatewayApp) -> None:
    # A domain auditor's scope is found among the federation's domains: make risk known.
    async with (
        serve_in_process(echo_domain("risk"), gateway=gateway.address),
        GatewayClient(gateway.address, domain="caller", insecure=True) as client,
    ):
        await wait_live(client, "risk")
    await gateway.audit.record([event(i) for i in range(30)])
    channel, audit = stub(gateway, "auditor")
    try:
        everything = await audit.QueryRecords(
            au.QueryRecordsRequest(page_size=1000, filter=au.AuditFilter(capability="score")),
            metadata=who("auditor"),
        )
        assert len(everything.records) == 30
        scoped = await audit.QueryRecords(
            au.QueryRecordsRequest(page_size=1000, filter=au.AuditFilter(capability="score")),
            metadata=who("riskaud"),
        )
        assert scoped.records
        assert all("risk" in (r.source_domain, r.target_domain) for r in scoped.records)
        assert len(scoped.records) < 30
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await audit.QueryRecords(au.QueryRecordsRequest(), metadata=who("finance"))
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        reads = await audit.QueryRecords(
            au.QueryRecordsRequest(
                page_size=1000,
                filter=au.AuditFilter(event_type="policy.decision", capability="audit"),
            ),
            metadata=who("auditor"),
        )
        decisions = {(r.actor, r.decision) for r in reads.records}
        assert {("auditor", "allow"), ("riskaud", "allow"), ("finance", "deny")} <= decisions
        # Paging newest first by cursor.
        first = await audit.QueryRecords(
            au.QueryRecordsRequest(page_size=10, filter=au.AuditFilter(capability="score")),
            metadata=who("auditor"),
        )
        second = await audit.QueryRecords(
            au.QueryRecordsRequest(
                page_size=10, cursor=first.next_cursor, filter=au.AuditFilter(capability="score")
            ),
            metadata=who("auditor"),
        )
        seqs = [r.seq for r in first.records] + [r.seq for r in second.records]
        assert seqs == sorted(seqs, reverse=True)
        assert len(set(seqs)) == 20
    finally:
        await channel.close()


async def test_trace_consistency_and_export(gateway: GatewayApp, tmp_path: Path) -> None:
    await gateway.audit.record([event(i) for i in range(12)])
    await checkpointed(gateway)
    first_size = gateway.audit_writer.store.head().size if gateway.audit_writer else 0
    await gateway.audit.record([event(i, event_id=f"later-{i}") for i in range(12, 20)])
    await checkpointed(gateway)
    channel, audit = stub(gateway, "auditor")
    keys = key_of(gateway)
    try:
        trace = await audit.GetTrace(
            au.GetTraceRequest(trace_id="trace-1"), metadata=who("auditor")
        )
        assert [r.seq for r in trace.records] == [4, 5, 6, 7]
        proof = await audit.ProveConsistency(
            au.ProveConsistencyRequest(old_size=first_size), metadata=who("auditor")
        )
        old, new = check_consistency(consistency_bundle(proof), keys)
        assert old.size == first_size < new.size
        data = b""
        manifest = ""
        async for chunk in audit.ExportRecords(
            au.ExportRecordsRequest(filter=au.AuditFilter(capability="score")),
            metadata=who("auditor"),
        ):
            data += chunk.data
            manifest = manifest or chunk.manifest
        result = check_export(data, manifest, keys)
        lines = [json.loads(line) for line in data.decode().splitlines()]
        assert result.records == len(lines) == 20
        with pytest.raises(ValueError, match="SHA-256"):
            check_export(data.replace(b"risk", b"rusk", 1), manifest, keys)
    finally:
        await channel.close()


async def test_the_cli_queries_traces_exports_and_proves(
    gateway: GatewayApp, tmp_path: Path
) -> None:
    await gateway.audit.record([event(i) for i in range(8)])
    await checkpointed(gateway)
    runner = CliRunner()
    key = str(
        gateway.settings.audit.signing_key_file(gateway.settings.state_dir).with_suffix(".pub")
    )
    base = ["--gateway", gateway.address, "--as", "auditor", "--insecure"]

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["audit", *args, *base])
        return result.exit_code, result.output

    code, out = await asyncio.to_thread(run, "query", "--format", "json", "--capability", "score")
    assert code == 0, out
    assert len(json.loads(out[out.index("{") :])["records"]) == 8
    code, out = await asyncio.to_thread(run, "query", "--format", "csv", "--source", "finance")
    assert code == 0, out
    assert "seq,event_id" in out
    code, out = await asyncio.to_thread(run, "trace", "trace-0")
    assert code == 0, out
    assert "trace trace-0" in out
    assert "task-1" in out
    export = tmp_path / "export.jsonl"
    code, out = await asyncio.to_thread(
        run, "export", "--output", str(export), "--capability", "score"
    )
    assert code == 0, out
    verified = runner.invoke(cli, ["audit", "verify-export", str(export), "--key", key])
    assert verified.exit_code == 0, verified.output
    export.write_text(export.read_text().replace("finance", "finanse", 1))
    tampered = runner.invoke(cli, ["audit", "verify-export", str(export), "--key", key])
    assert tampered.exit_code == 1
    bundle = tmp_path / "proof.json"
    code, out = await asyncio.to_thread(
        run, "prove", "--seq", "3", "--key", key, "--output", str(bundle)
    )
    assert code == 0, out
    assert "proven" in out
    offline = runner.invoke(cli, ["audit", "prove", "--check", str(bundle), "--key", key])
    assert offline.exit_code == 0, offline.output
    forged = json.loads(bundle.read_text())
    forged["record"]["outcome"] = "forged"
    bundle.write_text(json.dumps(forged))
    rejected = runner.invoke(cli, ["audit", "prove", "--check", str(bundle), "--key", key])
    assert rejected.exit_code == 1
    assert "NOT" in rejected.output
    code, out = await asyncio.to_thread(run, "checkpoint")
    assert code == 0, out
    assert "fedgate.local/audit\n" in out  # after the insecure-mode warning (stderr)
