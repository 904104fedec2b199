"""`fedgate domains list|describe` and `fedgate call`: the CLI as a gateway client."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.markup import escape

from domains.sdk import DomainInfo, GatewayClient, InvokeResult, TaskEvent, TaskState
from gateway.cli.output import console, errors, fail, print_json, print_table
from gateway.core.models import ContextRef
from gateway.core.names import check_name, parse_capability_ref
from gateway.errors import GatewayError
from gateway.identity.credentials import (
    CERTS_ENV,
    DEFAULT_CERTS_DIR,
    INSECURE_ENV,
    Credentials,
    default_certs_dir,
)
from gateway.identity.errors import IdentityError
from gateway.services.status_map import status_for
from gateway.services.tls import INSECURE_WARNING

T = TypeVar("T")

GATEWAY_OPTION = typer.Option(
    "127.0.0.1:7443", "--gateway", "-g", envvar="FEDGATE_GATEWAY", help="Gateway host:port."
)
CALLER_OPTION = typer.Option(
    "cli",
    "--as",
    help="Identity to call as: the certificate <certs>/<NAME>.pem proves it "
    "(in --insecure mode it is only asserted).",
)
CERTS_OPTION = typer.Option(
    DEFAULT_CERTS_DIR,
    "--certs",
    envvar=CERTS_ENV,
    help="Certificates folder with ca.pem and the --as identity's certificate and key.",
)
INSECURE_OPTION = typer.Option(
    False,
    "--insecure",
    envvar=INSECURE_ENV,
    help="Plaintext, identity only asserted: for a gateway run with --insecure (experiments).",
)


class Format(StrEnum):
    """Output formats."""

    table = "table"
    json = "json"


FORMAT_OPTION = typer.Option(Format.table, "--format", "-f", help="table or json.")

EXIT_OF_STATE = {
    TaskState.COMPLETED: 0,
    TaskState.FAILED: 1,
    TaskState.INPUT_REQUIRED: 3,
    TaskState.CANCELED: 4,
    TaskState.REJECTED: 5,
}
"""Exit codes of `fedgate call` per final task state (2 is reserved for bad usage/input)."""


def client_credentials(caller: str, certs: Path, insecure: bool) -> Credentials | None:
    """The CLI's credentials (`<certs>/<caller>.pem`), or None with a warning if insecure.

    Exits with a one-line error that says how to create missing certificates.
    """
    if insecure:
        errors.print(
            f"[bold yellow]warning:[/] {INSECURE_WARNING}", highlight=False, soft_wrap=True
        )
        return None
    try:
        return Credentials.load(certs, caller)
    except IdentityError as exc:
        fail(exc.message)


def run_client(
    address: str,
    caller: str,
    work: Callable[[GatewayClient], Awaitable[T]],
    *,
    certs: Path | None = None,
    insecure: bool = False,
) -> T:
    """Runs one client interaction; gateway errors become a one-line error and exit code.

    Args:
        address: The gateway's `host:port`.
        caller: Identity to call as (`--as`): the certificate `<certs>/<caller>.pem`.
        work: What to do with the client.
        certs: Certificates folder; None means `$FEDGATE_CERTS`, else `.fedgate/certs`.
        insecure: Plaintext with an asserted identity (gateway run with `--insecure`).
    """
    try:
        check_name("identity (--as)", caller)
    except GatewayError as exc:
        fail(exc.message, 2)
    credentials = client_credentials(caller, certs or default_certs_dir(), insecure)

    async def main() -> T:
        async with GatewayClient(
            address, domain=caller, credentials=credentials, insecure=insecure
        ) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        code = status_for(exc).name
        fail(f"{code}: {exc.message}", 2 if code == "INVALID_ARGUMENT" else 1)


domains_app = typer.Typer(help="Registered domains and their capabilities.", no_args_is_help=True)


@domains_app.command("list")
def list_domains(
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    include_offline: bool = typer.Option(
        False, "--all", help="Include domains with no live endpoint."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List registered domains."""
    domains = run_client(
        gateway,
        caller,
        lambda c: c.list_domains(include_offline=include_offline),
        certs=certs,
        insecure=insecure,
    )
    if fmt is Format.json:
        print_json([_domain_json(d) for d in domains])
        return
    print_domains(domains)


@domains_app.command("describe")
def describe_domain(
    name: str = typer.Argument(..., help="Domain name."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Show one domain: endpoints, leases and capabilities with their schemas."""
    info = run_client(
        gateway, caller, lambda c: c.describe_domain(name), certs=certs, insecure=insecure
    )
    if fmt is Format.json:
        print_json(_domain_json(info))
        return
    print_table(
        f"domain {info.name} (owner {info.owner})",
        ["endpoint", "live", "lease expires"],
        [
            (e.address, "yes" if e.live else "no", e.lease_expires_at.isoformat())
            for e in info.endpoints
        ],
    )
    for cap in info.capabilities:
        console.print(
            f"[bold]{escape(info.name)}/{escape(cap.name)}@{escape(cap.version)}[/] "
            f"{escape(cap.description)}\n  idempotent={cap.idempotent} "
            f"timeout={cap.default_timeout.total_seconds():g}s"
        )
        console.print_json(json.dumps(cap.input_schema))


def print_domains(domains: list[DomainInfo]) -> None:
    """The domains table used by `domains list` and the demo."""
    print_table(
        "domains",
        ["domain", "owner", "live endpoints", "capabilities"],
        [
            (
                d.name,
                d.owner,
                sum(e.live for e in d.endpoints),
                ", ".join(
                    f"{c.name}@{c.version}" + (" (idempotent)" if c.idempotent else "")
                    for c in d.capabilities
                ),
            )
            for d in domains
        ],
    )


def _domain_json(info: DomainInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "owner": info.owner,
        "endpoints": [
            {
                "address": e.address,
                "live": e.live,
                "lease_expires_at": e.lease_expires_at.isoformat(),
            }
            for e in info.endpoints
        ],
        "capabilities": [
            {
                "name": c.name,
                "version": c.version,
                "description": c.description,
                "idempotent": c.idempotent,
                "timeout_seconds": c.default_timeout.total_seconds(),
                "input_schema": c.input_schema,
                "output_schema": c.output_schema,
            }
            for c in info.capabilities
        ],
    }


def read_input(text: str) -> dict[str, Any]:
    """Parses `--input`: inline JSON, `@file` or `-` for standard input."""
    if text == "-":
        raw = sys.stdin.read()
    elif text.startswith("@"):
        try:
            raw = Path(text[1:]).read_text()
        except OSError as exc:
            fail(f"cannot read input file {text[1:]!r}: {exc.strerror}", 2)
    else:
        raw = text
    try:
        value = json.loads(raw)
    except ValueError as exc:
        fail(f"--input is not valid JSON: {exc}", 2)
    if not isinstance(value, dict):
        fail("--input must be a JSON object", 2)
    return value


def call_command(
    target: str = typer.Argument(..., help="DOMAIN/CAPABILITY[@VERSION] to invoke."),
    input_text: str = typer.Option(
        "{}", "--input", "-i", help="JSON object, @file, or - for stdin."
    ),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    agent: str = typer.Option("", help="Agent acting inside the caller domain, agent/<name>."),
    timeout: float | None = typer.Option(None, help="Deadline in seconds."),
    trace_id: str = typer.Option("", help="Trace to join (default: a new one)."),
    idempotency_key: str = typer.Option("", help="Key that makes retries safe."),
    stream: bool = typer.Option(False, "--stream", help="Show the task's events as they happen."),
    context: list[str] = typer.Option(
        [], "--context", help="Context item of the trace to attach, KEY or KEY@VERSION (repeat)."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Invoke a capability of a domain through the gateway and print the outcome.

    Exit codes: 0 completed, 1 failed or refused by the gateway, 2 bad input,
    3 input required (a human must respond), 4 canceled, 5 rejected.
    """
    try:
        parse_capability_ref(target)
    except GatewayError as exc:
        fail(exc.message, 2)
    payload = read_input(input_text)

    async def work(client: GatewayClient) -> InvokeResult:
        kwargs: dict[str, Any] = {
            "timeout": timeout,
            "trace_id": trace_id,
            "idempotency_key": idempotency_key,
            "agent": agent or None,
            "context_refs": [_context_ref(c) for c in context],
        }
        if not stream:
            return await client.invoke(target, payload, **kwargs)
        last: TaskEvent | None = None
        async for event in client.invoke_stream(target, payload, **kwargs):
            _print_event(event, fmt)
            last = event
        assert last is not None  # the gateway always ends a stream with a final event
        return InvokeResult(
            task_id=last.task_id,
            trace_id="",
            state=last.state,
            output=last.output,
            message=last.message,
            error=last.error,
        )

    result = run_client(gateway, caller, work, certs=certs, insecure=insecure)
    print_result(target, result, fmt)
    raise typer.Exit(EXIT_OF_STATE.get(result.state, 1))


def _context_ref(text: str) -> ContextRef:
    key, _, version = text.partition("@")
    if version and not version.isdigit():
        fail(f"--context {text!r}: expected KEY or KEY@VERSION", 2)
    return ContextRef(key, int(version or 0))


def _print_event(event: TaskEvent, fmt: Format) -> None:
    if fmt is Format.json:
        sys.stdout.write(
            json.dumps(
                {"sequence": event.sequence, "state": event.state.value, "message": event.message}
            )
            + "\n"
        )
    elif not event.final:
        console.print(
            f"  [dim]{event.sequence:>3} {event.state.value:<14}[/] {escape(event.message)}"
        )


def result_json(result: InvokeResult) -> dict[str, Any]:
    """An outcome as a JSON-ready dict."""
    return {
        "task_id": result.task_id,
        "trace_id": result.trace_id,
        "state": result.state.value,
        "output": result.output,
        "message": result.message,
        "error": None
        if result.error is None
        else {"code": result.error.code, "message": result.error.message},
    }


def print_result(target: str, result: InvokeResult, fmt: Format) -> None:
    """Prints a call's outcome for people (table) or scripts (json)."""
    if fmt is Format.json:
        print_json(result_json(result))
        return
    colour = {"completed": "green", "input-required": "yellow"}.get(result.state.value, "red")
    console.print(
        f"[bold]{escape(target)}[/] → [{colour}]{result.state.value}[/]"
        f"  task {result.task_id}" + (f"  trace {result.trace_id}" if result.trace_id else "")
    )
    if result.message and not result.ok:
        console.print(f"  {escape(result.message)}")
    if result.output is not None:
        console.print_json(json.dumps(result.output))
