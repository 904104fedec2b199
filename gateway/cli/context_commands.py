"""`fedgate context put|get|list|history|watch|delete`: the shared context from the CLI.

Every command acts as the `--as` identity: a write is owned by that domain, and a
read shows only what the policy and flow rules let it see (redacted items show
key, version, classification and owner, and why the value is withheld).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from domains.sdk import ContextClient, GatewayClient
from gateway.cli.client_commands import (
    CALLER_OPTION,
    CERTS_OPTION,
    FORMAT_OPTION,
    GATEWAY_OPTION,
    INSECURE_OPTION,
    Format,
    run_client,
)
from gateway.cli.output import console, fail, print_json, print_table
from gateway.core.context.items import ContextView, classification_name
from gateway.core.models import Classification
from gateway.core.policy.rules import CLASSIFICATIONS

context_app = typer.Typer(
    help="The shared context space: versioned items per trace, policy-filtered.",
    no_args_is_help=True,
)

TRACE_OPTION = typer.Option(..., "--trace", "-t", help="The trace the context lives in.")


def _classification(name: str | None) -> Classification | None:
    if name is None:
        return None
    try:
        return CLASSIFICATIONS[name.lower()]
    except KeyError:
        fail(f"unknown classification {name!r} (public, internal, confidential, restricted)", 2)


def _value(text: str) -> Any:
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        return json.loads(raw)
    except ValueError as exc:
        fail(f"--value is not valid JSON: {exc}", 2)


def view_json(view: ContextView) -> dict[str, Any]:
    """A view as JSON for `--format json` (the value only when not redacted)."""
    item = view.item
    result: dict[str, Any] = {
        "trace_id": item.trace_id,
        "key": item.key,
        "version": item.version,
        "revision": item.revision,
        "owner": item.owner,
        "classification": classification_name(item.classification),
        "written_by": item.written_by,
        "written_at": item.written_at.isoformat(),
        "expires_at": item.expires_at.isoformat() if item.expires_at else None,
        "deleted": item.deleted,
        "redacted": view.redacted,
    }
    if view.redacted:
        result["redaction_reason"] = view.reason
    elif not item.deleted:
        result["value"] = item.value
    return result


def _shown(view: ContextView) -> str:
    # Escaped: table cells are rich markup, where "[redacted: ...]" would vanish as a tag.
    if view.redacted:
        return escape(f"[redacted: {view.reason}]")
    if view.item.deleted:
        return escape("[deleted]")
    return escape(json.dumps(view.item.value, separators=(",", ":")))


def print_views(title: str, views: list[ContextView]) -> None:
    """The context table used by the commands and the demo."""
    print_table(
        title,
        ["key", "version", "owner", "classification", "written by", "value"],
        [
            (
                v.item.key,
                v.item.version,
                v.item.owner,
                classification_name(v.item.classification),
                v.item.written_by,
                _shown(v),
            )
            for v in views
        ],
    )


def _output(fmt: Format, title: str, views: list[ContextView]) -> None:
    if fmt is Format.json:
        print_json([view_json(v) for v in views])
    else:
        print_views(title, views)


@context_app.command("put")
def put_command(
    key: str = typer.Argument(..., help="Key of the item."),
    value: str = typer.Option(..., "--value", "-v", help="JSON value, or @file."),
    trace: str = TRACE_OPTION,
    classification: str | None = typer.Option(
        None, "--classification", "-c", help="public, internal (default), confidential, restricted."
    ),
    expected_version: int | None = typer.Option(
        None,
        "--expected-version",
        "-e",
        help="Write only over this version (0: create only); stale: exit 1 naming the current.",
    ),
    ttl: float | None = typer.Option(None, "--ttl", help="Seconds to live (default: gateway's)."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Write the next version of an item (owned by the --as domain)."""
    parsed = _value(value)
    level = _classification(classification)
    item = run_client(
        gateway,
        caller,
        lambda c: ContextClient(c).put(
            trace, key, parsed, classification=level, expected_version=expected_version, ttl=ttl
        ),
        certs=certs,
        insecure=insecure,
    )
    _output(fmt, f"written to trace {trace}", [ContextView(item)])


@context_app.command("get")
def get_command(
    key: str = typer.Argument(..., help="Key of the item."),
    trace: str = TRACE_OPTION,
    version: int = typer.Option(0, "--version", help="Version to read (0: the latest)."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Read one item as the --as identity may see it."""
    view = run_client(
        gateway,
        caller,
        lambda c: ContextClient(c).get(trace, key, version=version),
        certs=certs,
        insecure=insecure,
    )
    _output(fmt, f"trace {trace}", [view])


@context_app.command("list")
def list_command(
    trace: str = TRACE_OPTION,
    prefix: str = typer.Option("", "--prefix", "-p", help="Only keys starting with this."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the live items of a trace (redacted where the --as identity may not look)."""
    views = run_client(
        gateway,
        caller,
        lambda c: ContextClient(c).list_items(trace, prefix=prefix),
        certs=certs,
        insecure=insecure,
    )
    _output(fmt, f"context of trace {trace} as seen by {caller}", views)


@context_app.command("history")
def history_command(
    key: str = typer.Argument(..., help="Key of the item."),
    trace: str = TRACE_OPTION,
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Every stored version of an item, oldest first."""
    views = run_client(
        gateway,
        caller,
        lambda c: ContextClient(c).history(trace, key),
        certs=certs,
        insecure=insecure,
    )
    _output(fmt, f"history of {key} in trace {trace}", views)


@context_app.command("delete")
def delete_command(
    key: str = typer.Argument(..., help="Key of the item."),
    trace: str = TRACE_OPTION,
    expected_version: int | None = typer.Option(
        None, "--expected-version", "-e", help="Delete only this version."
    ),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Delete an item the --as domain owns (a tombstone version; recorded)."""
    item = run_client(
        gateway,
        caller,
        lambda c: ContextClient(c).delete(trace, key, expected_version=expected_version),
        certs=certs,
        insecure=insecure,
    )
    _output(fmt, f"deleted from trace {trace}", [ContextView(item)])


@context_app.command("watch")
def watch_command(
    trace: str = TRACE_OPTION,
    after: int = typer.Option(
        0, "--after", help="Resume after this revision (the last one printed)."
    ),
    count: int = typer.Option(0, "--count", "-n", help="Stop after this many changes (0: never)."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
) -> None:
    """Print each change of a trace as one JSON line, as it happens (Ctrl-C stops).

    Every line carries the trace `revision`; `--after` with the last one resumes
    without missing or repeating a change.
    """

    async def follow(client: GatewayClient) -> None:
        seen = 0
        changes = ContextClient(client).watch(trace, after_revision=after)
        async with contextlib.aclosing(changes):  # type: ignore[type-var]
            async for view in changes:
                console.file.write(json.dumps(view_json(view), sort_keys=True) + "\n")
                console.file.flush()
                seen += 1
                if count and seen >= count:
                    return

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        run_client(gateway, caller, follow, certs=certs, insecure=insecure)
