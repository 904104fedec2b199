"""`fedgate audit lineage --trace T --key K`: where one context item went, from the trail.

Registered on the `audit` command group (`gateway.cli.main`). Asks the gateway's
AuditService (`GetLineage`, which needs `audit.read` like every audit query) and
prints a table, JSON, or a Graphviz DOT graph (`| dot -Tsvg > lineage.svg`).
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path

import typer

from domains.sdk import GatewayClient
from domains.sdk.gateway_client import translate_rpc_errors
from federation.v1 import audit_pb2 as au
from federation.v1 import audit_pb2_grpc as au_grpc
from gateway.cli.client_commands import (
    CALLER_OPTION,
    CERTS_OPTION,
    GATEWAY_OPTION,
    INSECURE_OPTION,
    run_client,
)
from gateway.cli.output import console, fail, print_json, print_table
from gateway.core.context.lineage import LineageStep, lineage_dot
from gateway.services.audit_convert import lineage_step_from_proto


class LineageFormat(StrEnum):
    """Output formats of `audit lineage`."""

    table = "table"
    json = "json"
    dot = "dot"


def lineage_command(
    trace: str = typer.Option(..., "--trace", "-t", help="The trace the item lives in."),
    key: str = typer.Option(..., "--key", "-k", help="The context item's key."),
    fmt: LineageFormat = typer.Option(
        LineageFormat.table, "--format", "-f", help="table, json, or dot (Graphviz)."
    ),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
) -> None:
    """Every domain and task that wrote, read or was refused a context item, in order."""

    async def ask(client: GatewayClient) -> list[LineageStep]:
        stub = au_grpc.AuditServiceStub(client.channel)
        with translate_rpc_errors():
            reply = await stub.GetLineage(au.GetLineageRequest(trace_id=trace, key=key))
        return [lineage_step_from_proto(s) for s in reply.steps]

    steps = run_client(gateway, caller, ask, certs=certs, insecure=insecure)
    if fmt is LineageFormat.json:
        print_json([dataclasses.asdict(s) for s in steps])
        return
    if fmt is LineageFormat.dot:
        console.file.write(lineage_dot(trace, key, steps))
        return
    if not steps:
        fail(f"no records of context item {key!r} in trace {trace} (that you may see)", 1)
    print_table(
        f"lineage of {key} in trace {trace}",
        ["seq", "action", "domain", "actor", "version", "class", "task", "via", "rule"],
        [
            (
                s.seq,
                s.action,
                s.domain,
                s.actor,
                s.version or "",
                s.classification,
                s.task_id[:12],
                s.via or s.capability,
                s.rule,
            )
            for s in steps
        ],
    )
