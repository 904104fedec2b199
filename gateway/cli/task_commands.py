"""`fedgate task submit|get|watch|cancel|list|respond`: long-running tasks from the CLI."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table

from domains.sdk import GatewayClient, TaskClient, TaskEvent, TaskRecord, TaskState
from gateway.cli.client_commands import (
    CALLER_OPTION,
    CERTS_OPTION,
    EXIT_OF_STATE,
    FORMAT_OPTION,
    GATEWAY_OPTION,
    INSECURE_OPTION,
    Format,
    read_input,
    run_client,
)
from gateway.cli.output import console, fail, print_json, print_table
from gateway.core.names import parse_capability_ref
from gateway.errors import GatewayError

task_app = typer.Typer(
    help="Long-running tasks: submit now, watch, answer (input-required), cancel, list.",
    no_args_is_help=True,
)

_COLOUR = {
    TaskState.COMPLETED: "green",
    TaskState.INPUT_REQUIRED: "yellow",
    TaskState.WORKING: "cyan",
    TaskState.SUBMITTED: "cyan",
}


def record_json(record: TaskRecord) -> dict[str, Any]:
    """A task as a JSON-ready dict."""
    return {
        "task_id": record.task_id,
        "trace_id": record.trace_id,
        "caller": record.caller,
        "target": record.target,
        "state": record.state.value,
        "message": record.message,
        "output": record.output,
        "error": None
        if record.error is None
        else {"code": record.error.code, "message": record.error.message},
        "last_sequence": record.last_sequence,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "owner": record.owner,
        "endpoint": record.endpoint,
    }


def _print_record(record: TaskRecord, fmt: Format) -> None:
    if fmt is Format.json:
        print_json(record_json(record))
        return
    colour = _COLOUR.get(record.state, "red")
    console.print(
        f"task [bold]{record.task_id}[/] {escape(record.target)} → "
        f"[{colour}]{record.state.value}[/]  trace {record.trace_id}"
    )
    if record.message:
        console.print(f"  {escape(record.message)}")
    if record.output is not None:
        console.print_json(json.dumps(record.output))


def _exit_for(record: TaskRecord) -> None:
    # Same codes as `fedgate call`; a task still running exits 0 from submit/get.
    if record.done or record.state is TaskState.INPUT_REQUIRED:
        raise typer.Exit(EXIT_OF_STATE.get(record.state, 1))


@task_app.command("submit")
def submit_command(
    target: str = typer.Argument(..., help="DOMAIN/CAPABILITY[@VERSION] to run."),
    input_text: str = typer.Option(
        "{}", "--input", "-i", help="JSON object, @file, or - for stdin."
    ),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    agent: str = typer.Option("", help="Agent acting inside the caller domain, agent/<name>."),
    timeout: float | None = typer.Option(
        None, help="Seconds the task may take (default: the gateway's tasks.default_timeout)."
    ),
    trace_id: str = typer.Option("", help="Trace to join (default: a new one)."),
    idempotency_key: str = typer.Option("", help="The same key returns the same task."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Follow the task until it ends."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Submit a long-running task and print its id at once (or follow it with --watch)."""
    try:
        parse_capability_ref(target)
    except GatewayError as exc:
        fail(exc.message, 2)
    payload = read_input(input_text)

    async def work(client: GatewayClient) -> TaskRecord:
        return await TaskClient(client).submit(
            target,
            payload,
            timeout=timeout,
            idempotency_key=idempotency_key,
            trace_id=trace_id,
            agent=agent or None,
        )

    record = run_client(gateway, caller, work, certs=certs, insecure=insecure)
    if not watch:
        if fmt is Format.json:
            print_json(record_json(record))
        else:
            console.print(record.task_id)
        return
    _watch(gateway, caller, certs, insecure, record.task_id, 0, fmt)


@task_app.command("get")
def get_command(
    task_id: str = typer.Argument(..., help="Task id."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Show a task: state, message, output or error.

    Exit codes once it ended: 0 completed, 1 failed, 3 input required, 4 canceled.
    """
    record = run_client(
        gateway, caller, lambda c: TaskClient(c).get(task_id), certs=certs, insecure=insecure
    )
    _print_record(record, fmt)
    _exit_for(record)


@task_app.command("watch")
def watch_command(
    task_id: str = typer.Argument(..., help="Task id."),
    after: int = typer.Option(0, "--from", help="Only events after this sequence number."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Follow a task's events live until it ends (resume with --from N)."""
    _watch(gateway, caller, certs, insecure, task_id, after, fmt)


def _watch(
    gateway: str, caller: str, certs: Path, insecure: bool, task_id: str, after: int, fmt: Format
) -> None:
    async def work(client: GatewayClient) -> TaskRecord:
        tasks = TaskClient(client)
        if fmt is Format.json or not console.is_terminal:
            await _follow(tasks, task_id, after, lambda event: _print_event(event, fmt))
        else:
            await _live(tasks, task_id, after)
        return await tasks.get(task_id)

    record = run_client(gateway, caller, work, certs=certs, insecure=insecure)
    if fmt is not Format.json:
        _print_record(record, fmt)
    if record.state is TaskState.INPUT_REQUIRED:
        console.print(
            f"waiting for input: fedgate task respond {task_id} --input JSON "
            "(then watch again with --from to continue)",
            highlight=False,
        )
        raise typer.Exit(EXIT_OF_STATE[TaskState.INPUT_REQUIRED])
    raise typer.Exit(EXIT_OF_STATE.get(record.state, 1) if record.done else 0)


async def _follow(
    tasks: TaskClient, task_id: str, after: int, show: Callable[[TaskEvent], None]
) -> None:
    """Shows the task's events until it ends or waits for a human.

    A task waiting for input does nothing until someone responds, so the watch stops
    there (an older input-required event, already answered, does not stop it).
    """
    async with contextlib.aclosing(tasks.watch(task_id, after=after)) as events:
        async for event in events:
            show(event)
            if (
                event.state is TaskState.INPUT_REQUIRED
                and not event.final
                and (await tasks.get(task_id)).state is TaskState.INPUT_REQUIRED
            ):
                return


async def _live(tasks: TaskClient, task_id: str, after: int) -> None:
    """A live view: the events so far and a spinner with the current state."""
    table = Table(title=f"task {task_id}", title_justify="left")
    for column in ("#", "state", "message"):
        table.add_column(column)
    status = Spinner("dots", text="waiting for events")
    grid = Table.grid()
    grid.add_row(table)
    grid.add_row(status)

    def show(event: TaskEvent) -> None:
        colour = _COLOUR.get(event.state, "red")
        table.add_row(
            str(event.sequence), f"[{colour}]{event.state.value}[/]", escape(event.message)
        )
        status.update(text=f"{event.state.value}: {escape(event.message)}")
        if event.final:
            status.update(text="ended")

    with Live(grid, console=console, refresh_per_second=8):
        await _follow(tasks, task_id, after, show)


def _print_event(event: TaskEvent, fmt: Format) -> None:
    if fmt is Format.json:
        sys.stdout.write(
            json.dumps(
                {
                    "sequence": event.sequence,
                    "state": event.state.value,
                    "message": event.message,
                    "final": event.final,
                }
            )
            + "\n"
        )
        sys.stdout.flush()
        return
    console.print(f"  [dim]{event.sequence:>3} {event.state.value:<14}[/] {escape(event.message)}")


@task_app.command("cancel")
def cancel_command(
    task_id: str = typer.Argument(..., help="Task id."),
    reason: str = typer.Option("", help="Why; recorded and passed to the domain."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Cancel a task (only the domain that submitted it may)."""
    record = run_client(
        gateway,
        caller,
        lambda c: TaskClient(c).cancel(task_id, reason),
        certs=certs,
        insecure=insecure,
    )
    _print_record(record, fmt)


@task_app.command("list")
def list_command(
    state: list[TaskState] = typer.Option([], "--state", "-s", help="Only these states."),
    domain: str = typer.Option("", help="Only tasks whose target is this domain."),
    trace_id: str = typer.Option("", "--trace", help="Only tasks of this trace."),
    limit: int = typer.Option(50, min=1, max=500, help="Most tasks to show."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the tasks you may see (yours, those you may answer or audit), newest first."""
    records = run_client(
        gateway,
        caller,
        lambda c: TaskClient(c).list(states=state, domain=domain, trace_id=trace_id, limit=limit),
        certs=certs,
        insecure=insecure,
    )
    if fmt is Format.json:
        print_json([record_json(r) for r in records])
        return
    print_table(
        "tasks",
        ["task", "target", "state", "caller", "updated", "message"],
        [
            (
                r.task_id,
                r.target,
                r.state.value,
                r.caller,
                r.updated_at.strftime("%H:%M:%S"),
                r.message[:60],
            )
            for r in records
        ],
    )


@task_app.command("respond")
def respond_command(
    task_id: str = typer.Argument(..., help="Task id."),
    input_text: str = typer.Option(
        ..., "--input", "-i", help='The answer: JSON object, @file or -, e.g. {"approved": true}.'
    ),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Answer a task waiting for input (needs `respond` on its capability in the policy)."""
    answer = read_input(input_text)
    record = run_client(
        gateway,
        caller,
        lambda c: TaskClient(c).respond(task_id, answer),
        certs=certs,
        insecure=insecure,
    )
    _print_record(record, fmt)
