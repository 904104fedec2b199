"""`fedgate audit ...`: verify, query, export, prove and trace the audit trail (docs/audit.md).

`verify` and `checkpoint` read the gateway's database directly (a compliance
officer's copy will do): they need no running gateway and trust nothing in the
database but what the checkpoint keys signed. `query`, `export`, `trace` and
`prove` ask a gateway's AuditService, which checks `audit.read`.

Exit codes: 0 success (verify: the log is intact), 1 tampering found or the
gateway refused, 2 bad usage or unreadable input, 4 the database is unavailable.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.tree import Tree

from domains.sdk import GatewayClient
from domains.sdk.gateway_client import translate_rpc_errors
from federation.v1 import audit_pb2 as au
from federation.v1 import audit_pb2_grpc as au_grpc
from gateway.audit.keys import KeyFileError, read_verifiers
from gateway.audit.outside import CheckpointDirectory
from gateway.audit.verification import VerifyRun, verify_log
from gateway.cli.client_commands import (
    CALLER_OPTION,
    CERTS_OPTION,
    GATEWAY_OPTION,
    INSECURE_OPTION,
    run_client,
)
from gateway.cli.output import console, fail, print_json, print_table
from gateway.core.audit_proof import (
    ConsistencyBundle,
    InclusionBundle,
    ProofCheckFailed,
    bundle_from_json,
    check_consistency,
    check_export,
    check_inclusion,
)
from gateway.core.audit_record import JSON_FIELDS, AuditRecord, format_time, record_to_json
from gateway.core.audit_verify import VerifyReport
from gateway.core.signed_note import NoteVerifier
from gateway.errors import StoreUnavailable
from gateway.services.audit_convert import consistency_bundle, inclusion_bundle, record_from_proto
from gateway.services.convert import timestamp_to_proto
from gateway.settings import Settings
from gateway.store.audit_store import SqlAuditStore
from gateway.store.database import open_engine

T = TypeVar("T")

EXIT_TAMPERED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 4

audit_app = typer.Typer(
    help="The tamper-evident audit trail: verify, query, export, prove, trace (docs/audit.md).",
    no_args_is_help=True,
)


class Format(StrEnum):
    """Output formats."""

    table = "table"
    json = "json"
    csv = "csv"


class ExportFormat(StrEnum):
    """Export file formats."""

    jsonl = "jsonl"
    csv = "csv"


CONFIG_OPTION = typer.Option(
    None, "--config", "-c", help="The gateway's TOML config file.", exists=True
)
STATE_DIR_OPTION = typer.Option(None, "--state-dir", help="The gateway's state folder.")
DATABASE_OPTION = typer.Option(
    None, "--database-url", help="The gateway's database (default: from the settings)."
)
KEY_OPTION = typer.Option(
    None,
    "--key",
    help="File with trusted checkpoint verifier keys (repeatable). Default: the state "
    "folder's audit-checkpoint.pub and the *.vkey files in the checkpoint folders.",
)
CHECKPOINTS_OPTION = typer.Option(
    None,
    "--checkpoints",
    help="Folder of checkpoint copies kept outside the database (repeatable). "
    "Default: the configured one.",
)


def _settings(config: Path | None, state_dir: Path | None, database_url: str | None) -> Settings:
    overrides: dict[str, Any] = {}
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        return Settings.load(config, **overrides)
    except ValidationError as exc:
        fail(f"invalid configuration: {exc}", EXIT_USAGE)


def _trusted_keys(
    settings: Settings, keys: list[Path] | None, folders: list[CheckpointDirectory]
) -> list[NoteVerifier]:
    files = list(keys or [])
    if not files:
        default = settings.audit.signing_key_file(settings.state_dir).with_suffix(".pub")
        files = [default] if default.exists() else []
        files += [f for folder in folders for f in folder.key_files()]
    if not files:
        fail(
            "no checkpoint verifier key: pass --key FILE (the gateway writes "
            "audit-checkpoint.pub in its state folder)",
            EXIT_USAGE,
        )
    try:
        verifiers = read_verifiers(files)
    except KeyFileError as exc:
        fail(str(exc), EXIT_USAGE)
    return list({v.vkey: v for v in verifiers}.values())


def _store(settings: Settings) -> SqlAuditStore:
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            fail(f"no gateway database at {path}", EXIT_USAGE)
    return SqlAuditStore(open_engine(url))


@audit_app.command("verify")
def verify_command(
    config: Path | None = CONFIG_OPTION,
    state_dir: Path | None = STATE_DIR_OPTION,
    database_url: str | None = DATABASE_OPTION,
    key: list[Path] | None = KEY_OPTION,
    checkpoints: list[Path] | None = CHECKPOINTS_OPTION,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """Recompute every record's hashes, the chain and the Merkle tree; check every checkpoint.

    Names the first bad record for each kind of tampering found. Records after the
    newest checkpoint are checked but not vouched for by any signature (reported).
    """
    settings = _settings(config, state_dir, database_url)
    folders = [
        CheckpointDirectory(p)
        for p in (checkpoints or [settings.audit.checkpoint_directory(settings.state_dir)])
    ]
    verifiers = _trusted_keys(settings, key, folders)
    store = _store(settings)
    try:
        run = verify_log(store, verifiers, settings.audit.origin, folders)
    except StoreUnavailable as exc:
        fail(exc.message, EXIT_UNAVAILABLE)
    finally:
        store.engine.dispose()
    if fmt is Format.json:
        print_json(report_json(run))
    else:
        print_report(run, verifiers)
    raise typer.Exit(0 if run.report.ok else EXIT_TAMPERED)


def report_json(run: VerifyRun) -> dict[str, Any]:
    """A verification as a JSON-ready dict."""
    report = run.report
    return {
        "ok": report.ok,
        "records": report.records,
        "head_size": report.head_size,
        "root_hash": report.root_hash.hex(),
        "checkpoints_checked": report.checkpoints,
        "outside_checkpoints": report.outside_checkpoints,
        "newest_checkpoint": report.newest_checkpoint,
        "unsigned_records": report.unsigned_records,
        "first_bad_seq": report.first_bad_seq,
        "findings": [
            {"problem": str(f.problem), "seq": f.seq, "message": f.message} for f in report.findings
        ],
        "more_findings": report.dropped_findings,
        "seconds": round(run.seconds, 3),
        "records_per_second": round(run.records_per_second),
    }


def print_report(run: VerifyRun, verifiers: list[NoteVerifier]) -> None:
    """Prints a verification for people."""
    report: VerifyReport = run.report
    console.print(
        f"verified {report.records} records in {run.seconds:.2f}s "
        f"({run.records_per_second:,.0f}/s) against {report.checkpoints} checkpoint(s) "
        f"({report.outside_checkpoints} outside copies), keys: "
        + ", ".join(escape(v.vkey.split("+")[0] + "+" + f"{v.key_hash:08x}") for v in verifiers)
    )
    console.print(f"root {report.root_hash.hex()} at size {report.records}")
    if report.unsigned_records:
        console.print(
            f"[yellow]{report.unsigned_records} record(s) after the newest checkpoint "
            f"(size {report.newest_checkpoint}) are not yet covered by a signature[/]"
        )
    if report.ok:
        console.print("[bold green]the audit trail is intact[/]")
        return
    console.print(f"[bold red]TAMPERED: first bad record {report.first_bad_seq}[/]")
    for finding in report.findings:
        where = "" if finding.seq is None else f"seq {finding.seq}: "
        console.print(f"  [red]{finding.problem}[/] {escape(where + finding.message)}")
    if report.dropped_findings:
        console.print(f"  ... and {report.dropped_findings} more")


@audit_app.command("checkpoint")
def checkpoint_command(
    config: Path | None = CONFIG_OPTION,
    state_dir: Path | None = STATE_DIR_OPTION,
    database_url: str | None = DATABASE_OPTION,
    size: int | None = typer.Option(None, help="The checkpoint of this size (default: newest)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also save the signed note to this file."
    ),
    gateway: str | None = typer.Option(
        None,
        "--gateway",
        "-g",
        help="Ask this gateway's AuditService (needs audit.read) instead of reading a database.",
    ),
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
) -> None:
    """Print a signed checkpoint (C2SP note): keep it, and later ask for proofs against it."""
    if gateway is not None:
        request = au.GetCheckpointRequest(size=size or 0)
        reply = _audit(gateway, caller, certs, insecure, lambda s: s.GetCheckpoint(request))
        note = reply.note
    else:
        settings = _settings(config, state_dir, database_url)
        store = _store(settings)
        try:
            checkpoint = store.checkpoint(size)
        except StoreUnavailable as exc:
            fail(exc.message, EXIT_UNAVAILABLE)
        finally:
            store.engine.dispose()
        if checkpoint is None:
            fail("no such checkpoint" if size is not None else "the log has no checkpoint yet", 1)
        note = checkpoint.note
    if output is not None:
        output.write_text(note)
    sys.stdout.write(note)


# --- through the gateway's AuditService ------------------------------------------------


def _audit(
    gateway: str,
    caller: str,
    certs: Path,
    insecure: bool,
    work: Callable[[au_grpc.AuditServiceAsyncStub], Awaitable[T]],
) -> T:
    """Runs `work` with an AuditService stub on the CLI's gateway channel; errors exit 1/2."""

    async def with_stub(client: GatewayClient) -> T:
        stub: au_grpc.AuditServiceAsyncStub = au_grpc.AuditServiceStub(client.channel)
        with translate_rpc_errors():
            return await work(stub)

    return run_client(gateway, caller, with_stub, certs=certs, insecure=insecure)


def _time(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{name} must be an ISO 8601 time, e.g. 2026-11-24T10:00:00Z", EXIT_USAGE)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _filter(
    since: str | None,
    until: str | None,
    source: str,
    target: str,
    actor: str,
    capability: str,
    event_type: str,
    decision: str,
    outcome: str,
    classification: str,
    trace: str,
) -> au.AuditFilter:
    message = au.AuditFilter(
        source_domain=source,
        target_domain=target,
        actor=actor,
        capability=capability,
        event_type=event_type,
        decision=decision,
        outcome=outcome,
        classification=classification,
        trace_id=trace,
    )
    begin, end = _time(since, "--since"), _time(until, "--until")
    if begin is not None:
        message.since.CopyFrom(timestamp_to_proto(begin))
    if end is not None:
        message.until.CopyFrom(timestamp_to_proto(end))
    return message


SINCE = typer.Option(None, "--since", help="Log time at or after (ISO 8601).")
UNTIL = typer.Option(None, "--until", help="Log time before (ISO 8601).")
SOURCE = typer.Option("", "--source", help="Source domain.")
TARGET = typer.Option("", "--target", help="Target domain.")
ACTOR = typer.Option("", "--principal", "--actor", help="Acting principal.")
CAPABILITY = typer.Option("", "--capability", help="Capability.")
EVENT_TYPE = typer.Option("", "--type", help="Event type, e.g. task.finished.")
DECISION = typer.Option("", "--decision", help="allow or deny.")
OUTCOME = typer.Option("", "--outcome", help="Outcome, e.g. completed, failed.")
CLASSIFICATION = typer.Option("", "--classification", help="Context classification.")
TRACE = typer.Option("", "--trace", help="Trace id.")


def _records_table(title: str, records: list[AuditRecord]) -> None:
    print_table(
        title,
        [
            "seq",
            "log time",
            "type",
            "actor",
            "source → target",
            "capability",
            "decision",
            "outcome",
            "µs",
        ],
        [
            (
                r.seq,
                format_time(r.log_time),
                r.event_type,
                r.actor,
                f"{r.source_domain} → {r.target_domain}",
                r.capability,
                r.decision,
                r.outcome,
                r.duration_us or "",
            )
            for r in records
        ],
    )


def _write_csv(records: list[AuditRecord]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(JSON_FIELDS)
    for record in records:
        value = record_to_json(record)
        writer.writerow(
            json.dumps(value[n], ensure_ascii=False) if n == "classifications" else value[n]
            for n in JSON_FIELDS
        )


@audit_app.command("query")
def query_command(
    since: str | None = SINCE,
    until: str | None = UNTIL,
    source: str = SOURCE,
    target: str = TARGET,
    actor: str = ACTOR,
    capability: str = CAPABILITY,
    event_type: str = EVENT_TYPE,
    decision: str = DECISION,
    outcome: str = OUTCOME,
    classification: str = CLASSIFICATION,
    trace: str = TRACE,
    cursor: int | None = typer.Option(None, help="Continue from this cursor (a log position)."),
    oldest_first: bool = typer.Option(False, "--oldest-first", help="Oldest records first."),
    limit: int = typer.Option(50, "--limit", "-n", help="Records per page (1..1000)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, json or csv."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
) -> None:
    """Query the audit trail (needs audit.read); prints one page and the next cursor."""
    request = au.QueryRecordsRequest(
        filter=_filter(
            since,
            until,
            source,
            target,
            actor,
            capability,
            event_type,
            decision,
            outcome,
            classification,
            trace,
        ),
        oldest_first=oldest_first,
        page_size=limit,
    )
    if cursor is not None:
        request.cursor = cursor
    reply = _audit(gateway, caller, certs, insecure, lambda stub: stub.QueryRecords(request))
    records = [record_from_proto(r) for r in reply.records]
    next_cursor = reply.next_cursor if reply.HasField("next_cursor") else None
    if fmt is Format.json:
        print_json(
            {
                "records": [record_to_json(r) for r in records],
                "next_cursor": next_cursor,
                "log_size": reply.log_size,
            }
        )
    elif fmt is Format.csv:
        _write_csv(records)
    else:
        _records_table(f"audit records (log size {reply.log_size})", records)
        if next_cursor is not None:
            console.print(f"more: --cursor {next_cursor}")


@audit_app.command("trace")
def trace_command(
    trace_id: str = typer.Argument(..., help="The trace id."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table (a tree) or json."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
) -> None:
    """Show one trace as a tree: who called whom, decisions, outcomes, durations."""
    request = au.GetTraceRequest(trace_id=trace_id)
    reply = _audit(gateway, caller, certs, insecure, lambda stub: stub.GetTrace(request))
    records = [record_from_proto(r) for r in reply.records]
    if fmt is not Format.table:
        print_json([record_to_json(r) for r in records])
        return
    if not records:
        fail(f"no records of trace {trace_id} (that you may see)", 1)
    console.print(trace_tree(trace_id, records))


def trace_tree(trace_id: str, records: list[AuditRecord]) -> Tree:
    """The records of a trace as a tree of tasks (spans), each with its events."""
    tree = Tree(f"[bold]trace {escape(trace_id)}[/]")
    spans: dict[str, list[AuditRecord]] = {}
    parents: dict[str, str] = {}
    loose: list[AuditRecord] = []
    for record in records:
        if record.span_id:
            spans.setdefault(record.span_id, []).append(record)
            if record.parent_span_id:
                parents[record.span_id] = record.parent_span_id
        else:
            loose.append(record)
    nodes: dict[str, Tree] = {}

    def node(span: str) -> Tree:
        if span in nodes:
            return nodes[span]
        events = spans[span]
        first = events[0]
        parent = parents.get(span)
        attach = node(parent) if parent in spans else tree
        label = (
            f"[bold]{escape(first.source_domain)} → "
            f"{escape(first.target_domain)}/{escape(first.capability)}[/] "
            f"[dim]task {escape(span)} by {escape(first.actor)}[/]"
        )
        branch = attach.add(label)
        nodes[span] = branch
        for event in events:
            decision = f" {event.decision}" if event.decision else ""
            if event.rule:
                decision += f" ({escape(event.rule)})"
            took = f" {event.duration_us / 1000:.1f} ms" if event.duration_us else ""
            result = f" → {escape(event.outcome)}" if event.outcome else ""
            branch.add(
                f"[dim]#{event.seq} {format_time(event.log_time)}[/] "
                f"{escape(event.event_type)}{decision}{result}{took}"
            )
        return branch

    for span in spans:
        node(span)
    for record in loose:
        tree.add(f"#{record.seq} {escape(record.event_type)} {escape(record.actor)}")
    return tree


@audit_app.command("export")
def export_command(
    output: Path = typer.Option(..., "--output", "-o", help="The file to write."),
    fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format", "-f", help="jsonl or csv."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    source: str = SOURCE,
    target: str = TARGET,
    actor: str = ACTOR,
    capability: str = CAPABILITY,
    event_type: str = EVENT_TYPE,
    decision: str = DECISION,
    outcome: str = OUTCOME,
    classification: str = CLASSIFICATION,
    trace: str = TRACE,
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
) -> None:
    """Export matching records (up to the newest checkpoint) with a signed manifest.

    Writes OUTPUT and OUTPUT.manifest: a note signed by the log's key naming the
    file's SHA-256, its record count and the checkpoint covering the records.
    Check both later with `fedgate audit verify-export`.
    """
    request = au.ExportRecordsRequest(
        filter=_filter(
            since,
            until,
            source,
            target,
            actor,
            capability,
            event_type,
            decision,
            outcome,
            classification,
            trace,
        ),
        format=fmt.value,
    )

    async def work(stub: au_grpc.AuditServiceAsyncStub) -> str:
        manifest = ""
        with output.open("wb") as handle:
            async for chunk in stub.ExportRecords(request):
                handle.write(chunk.data)
                if chunk.manifest:
                    manifest = chunk.manifest
        return manifest

    manifest = _audit(gateway, caller, certs, insecure, work)
    if not manifest:
        fail("the gateway ended the export without a manifest; do not trust the file", 1)
    manifest_path = output.with_name(output.name + ".manifest")
    manifest_path.write_text(manifest)
    console.print(f"wrote {output} and {manifest_path}")
    console.print(manifest.split("\n\n")[0], highlight=False)


@audit_app.command("verify-export")
def verify_export_command(
    file: Path = typer.Argument(..., exists=True, help="The exported file."),
    manifest: Path | None = typer.Option(None, help="Its manifest (default FILE.manifest)."),
    key: list[Path] = typer.Option(..., "--key", help="File with the log's verifier key."),
    checkpoint: list[Path] | None = typer.Option(
        None, "--checkpoint", help="A signed checkpoint you hold, to compare (repeatable)."
    ),
) -> None:
    """Check offline that an export is exactly what the gateway signed."""
    manifest_path = manifest or file.with_name(file.name + ".manifest")
    try:
        verifiers = read_verifiers(key)
        notes = [p.read_text() for p in checkpoint or []]
        result = check_export(file.read_bytes(), manifest_path.read_text(), verifiers, notes)
    except (KeyFileError, OSError) as exc:
        fail(str(exc), EXIT_USAGE)
    except ProofCheckFailed as exc:
        fail(f"export NOT verified: {exc}", EXIT_TAMPERED)
    console.print(
        f"[bold green]export verified[/]: {result.records} records ({result.format}), "
        f"sha256 {result.sha256.hex()}, covered by checkpoint {result.checkpoint_size}"
    )


@audit_app.command("prove")
def prove_command(
    seq: int | None = typer.Option(None, "--seq", help="Prove that this record is in the log."),
    size: int | None = typer.Option(
        None, "--size", help="...in the checkpoint of this size (default: newest)."
    ),
    old: int | None = typer.Option(
        None, "--from", help="Prove the checkpoint of this size is a prefix of a later one."
    ),
    new: int | None = typer.Option(None, "--to", help="...of this size (default: newest)."),
    check: Path | None = typer.Option(
        None, "--check", exists=True, help="Check a saved proof bundle offline (no gateway)."
    ),
    key: list[Path] | None = typer.Option(
        None, "--key", help="File with the log's verifier key (needed to check)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Save the proof bundle."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
) -> None:
    """Get an inclusion or consistency proof and check it offline against a signed checkpoint.

    The check trusts only the --key: it recomputes the record's leaf hash from its
    fields, verifies the checkpoint's signature and the proof's path to its root.
    """
    bundle: InclusionBundle | ConsistencyBundle
    if check is not None:
        try:
            bundle = bundle_from_json(json.loads(check.read_text()))
        except (ValueError, ProofCheckFailed) as exc:
            fail(f"{check}: {exc}", EXIT_USAGE)
    elif seq is not None:
        request = au.ProveInclusionRequest(seq=seq, tree_size=size or 0)
        answer = _audit(gateway, caller, certs, insecure, lambda s: s.ProveInclusion(request))
        bundle = inclusion_bundle(answer)
    elif old is not None:
        consistency = au.ProveConsistencyRequest(old_size=old, new_size=new or 0)
        reply = _audit(gateway, caller, certs, insecure, lambda s: s.ProveConsistency(consistency))
        bundle = consistency_bundle(reply)
    else:
        fail("give --seq N (inclusion), --from SIZE (consistency) or --check FILE", EXIT_USAGE)
    if output is not None:
        output.write_text(json.dumps(bundle.to_json(), indent=2) + "\n")
        console.print(f"saved the proof to {output}")
    if not key:
        if check is not None:
            fail("--key is needed to check a proof", EXIT_USAGE)
        console.print("[yellow]not checked: pass --key FILE to check the proof offline[/]")
        return
    try:
        verifiers = read_verifiers(key)
    except KeyFileError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        if isinstance(bundle, InclusionBundle):
            checkpoint = check_inclusion(bundle, verifiers)
            console.print(
                f"[bold green]proven[/]: record {bundle.record.seq} "
                f"({escape(bundle.record.event_type)} by {escape(bundle.record.actor)}) is in "
                f"the log {escape(checkpoint.origin)} of size {checkpoint.size}, "
                f"root {checkpoint.root_hash.hex()}"
            )
        else:
            first, second = check_consistency(bundle, verifiers)
            console.print(
                f"[bold green]proven[/]: the log of size {first.size} is a prefix of the log "
                f"of size {second.size} ({escape(second.origin)})"
            )
    except ProofCheckFailed as exc:
        fail(f"proof does NOT hold: {exc}", EXIT_TAMPERED)
