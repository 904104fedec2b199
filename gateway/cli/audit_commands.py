"""`fedgate audit ...`: verify, query, export, prove and trace the audit trail (docs/audit.md).

`verify` and `checkpoint` read the gateway's database directly (a compliance
officer's copy will do): they need no running gateway and trust nothing in the
database but what the checkpoint keys signed. `query`, `export`, `trace` and
`prove` ask a gateway's AuditService, which checks `audit.read`.

Exit codes: 0 success (verify: the log is intact), 1 tampering found or the
gateway refused, 2 bad usage or unreadable input, 4 the database is unavailable.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from gateway.audit.keys import KeyFileError, read_verifiers
from gateway.audit.outside import CheckpointDirectory
from gateway.audit.verification import VerifyRun, verify_log
from gateway.cli.output import console, fail, print_json
from gateway.core.audit_verify import VerifyReport
from gateway.core.signed_note import NoteVerifier
from gateway.errors import StoreUnavailable
from gateway.settings import Settings
from gateway.store.audit_store import SqlAuditStore
from gateway.store.database import open_engine

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
) -> None:
    """Print a signed checkpoint (C2SP note): keep it, and later ask for proofs against it."""
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
    if output is not None:
        output.write_text(checkpoint.note)
    sys.stdout.write(checkpoint.note)


def dump_json(value: Any) -> str:
    """Compact JSON for JSONL output."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
