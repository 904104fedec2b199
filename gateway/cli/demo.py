"""`fedgate demo`: the gateway and the three example domains, the refund flow, a clean stop.

Everything runs as real processes on loopback, with mTLS: a fresh development CA
and certificates (gateway, cli, risk, finance, support) in `<state>/certs`, the
gateway on SQLite in the state folder, then risk, finance and support, each
registering itself. The scenarios go through `fedgate call` exactly as a person
would type them (with `FEDGATE_CERTS=<state>/certs`); then `fedgate context` and
`fedgate audit lineage` show the first refund's shared context: what finance saw,
what was redacted for it, and where support's restricted notes went.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from domains.sdk import GatewayClient
from gateway.cli import processes
from gateway.cli.client_commands import print_domains
from gateway.cli.output import console, fail, print_table
from gateway.identity import dev_ca
from gateway.identity.credentials import CERTS_ENV, Credentials

DOMAINS = ("risk", "finance", "support")


@dataclass(frozen=True)
class Scenario:
    """One `fedgate call` of the tour and the exit code it should end with."""

    title: str
    target: str
    input: dict[str, object]
    expect_exit: int
    expect: str
    in_demo_trace: bool = False
    """Run in the demo's trace, whose shared context the context steps then show."""


@dataclass(frozen=True)
class CliStep:
    """One other `fedgate` command of the tour (`{trace}` is the demo trace)."""

    title: str
    args: tuple[str, ...]
    expect_exit: int
    expect: str
    shows: str
    """Text the command's output must contain."""


SCENARIOS = (
    Scenario(
        "refund for a loyal customer",
        "support/open-refund-case",
        {"customer_id": "c-1001", "order_id": "o-5001", "amount": 42.5, "reason": "arrived broken"},
        0,
        "completed: support -> risk, support -> finance -> risk",
        in_demo_trace=True,
    ),
    Scenario(
        "large refund for an unknown customer",
        "support/open-refund-case",
        {"customer_id": "c-9999", "order_id": "o-7777", "amount": 2500, "reason": "never arrived"},
        3,
        "input-required: escalated to a human",
    ),
    Scenario(
        "malformed request",
        "support/open-refund-case",
        {"customer_id": "c-1001", "order_id": "o-5002", "amount": -5, "reason": "double charge"},
        2,
        "INVALID_ARGUMENT with the JSON path",
    ),
    Scenario(
        "capability that does not exist",
        "finance/wire-money",
        {"amount": 1},
        1,
        "NOT_FOUND",
    ),
    Scenario(
        "operator pays a refund directly, bypassing support's case",
        "finance/issue-refund",
        {"case_id": "case-x", "customer_id": "c-1001", "order_id": "o-5003", "amount": 900},
        1,
        "PERMISSION_DENIED: needs invoke on finance/issue-refund",
    ),
)

CONTEXT_STEPS = (
    CliStep(
        "the refund's shared context, as finance sees it",
        ("context", "list", "--trace", "{trace}", "--as", "finance"),
        0,
        "case and risk/score whole; support's restricted notes redacted",
        "redacted",
    ),
    CliStep(
        "support reads its own notes",
        ("context", "get", "case/notes", "--trace", "{trace}", "--as", "support"),
        0,
        "restricted, whole: it never left support",
        "restricted",
    ),
    CliStep(
        "a stale write of the case",
        (
            "context",
            "put",
            "case",
            "--trace",
            "{trace}",
            "--value",
            "{{}}",
            "-e",
            "0",
            "--as",
            "support",
        ),
        1,
        "ABORTED: names the current version",
        "current version is 1",
    ),
    CliStep(
        "where did support's notes go? (lineage from the audit trail)",
        ("audit", "lineage", "--trace", "{trace}", "--key", "case/notes", "--as", "auditor"),
        0,
        "written by support, redacted for finance",
        "redacted",
    ),
)

OBSERVERS = {"cli": ("support", "risk"), "support": ("finance",)}
"""Who sees which domain registered: callers see only what the policy lets them invoke."""


def _wait_registered(
    address: str, gateway: processes.Child, certs: Path, timeout: float = 30.0
) -> None:
    async def registered() -> bool:
        for observer, expected in OBSERVERS.items():
            credentials = Credentials.load(certs, observer)
            async with GatewayClient(address, domain=observer, credentials=credentials) as client:
                live = {d.name for d in await client.list_domains()}
            if not set(expected) <= live:
                return False
        return True

    processes.wait_for(
        gateway, lambda: asyncio.run(registered()), "all domains registered", timeout
    )


def _run_scenario(
    address: str, scenario: Scenario, certs: Path, trace: str
) -> tuple[int, float, str]:
    args = ["call", scenario.target, "--input", json.dumps(scenario.input)]
    if scenario.in_demo_trace:
        args += ["--trace-id", trace]
    return _run_fedgate(address, scenario.title, args, certs)


def _run_fedgate(address: str, title: str, args: list[str], certs: Path) -> tuple[int, float, str]:
    argv = [sys.executable, "-m", "gateway", *args, "--gateway", address]
    console.rule(f"[bold]{title}")
    shown = " ".join(f"'{a}'" if a.startswith("{") else a for a in args)
    console.print(f"$ fedgate {shown}", highlight=False)
    started = time.monotonic()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # Wide enough that tables keep their words (the checks below read them).
        env={**os.environ, CERTS_ENV: str(certs), "COLUMNS": "200"},
    )
    elapsed = time.monotonic() - started
    sys.stdout.write(done.stdout)
    sys.stdout.write(done.stderr)
    sys.stdout.flush()
    return done.returncode, elapsed, done.stdout + done.stderr


def demo_command(
    state_dir: Path = typer.Option(Path(".fedgate-demo"), help="Folder for the database and logs."),
) -> None:
    """Run the gateway and example domains, the refund scenarios, then stop everything."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in state_dir.glob("fedgate.db*"):
        stale.unlink()  # every demo starts from an empty registry
    logs = state_dir / "logs"
    ready = state_dir / "gateway.addr"
    ready.unlink(missing_ok=True)
    certs = state_dir / "certs"
    dev_ca.issue_federation(certs, ("cli", "auditor", *DOMAINS))
    cli = Credentials.load(certs, "cli")
    console.print(
        f"mTLS: fresh CA ({cli.trust_domain}) and certificates for the gateway, cli, "
        f"{', '.join(DOMAINS)} in {certs}/",
        highlight=False,
    )
    children: list[processes.Child] = []
    results: list[tuple[str, str, bool, int, float]] = []
    trace = f"demo-{secrets.token_hex(8)}"
    try:
        gateway = processes.start(
            "gateway",
            processes.python_module(
                "gateway",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
                str(state_dir),
                "--ready-file",
                str(ready),
            ),
            logs,
        )
        children.append(gateway)
        address = processes.wait_ready_file(gateway, ready)
        processes.wait_for(
            gateway, lambda: processes.is_serving(address, "", cli), "health SERVING"
        )
        console.print(f"gateway serving on [bold]{address}[/] (SQLite in {state_dir}/)")
        for name in DOMAINS:
            children.append(
                processes.start(
                    name,
                    processes.python_module(
                        f"domains.{name}", "--gateway", address, "--certs", str(certs)
                    ),
                    logs,
                )
            )
        _wait_registered(address, gateway, certs)

        async def listing() -> None:
            async with GatewayClient(address, domain="cli", credentials=cli) as client:
                print_domains(await client.list_domains())

        asyncio.run(listing())
        console.print(
            "the operator (cli) sees only what the shared policy lets it invoke "
            "(policies/policy.csv; `fedgate policy explain` says why)"
        )
        for scenario in SCENARIOS:
            code, elapsed, _ = _run_scenario(address, scenario, certs, trace)
            results.append(
                (scenario.title, scenario.expect, code == scenario.expect_exit, code, elapsed)
            )
        for step in CONTEXT_STEPS:
            args = [a.format(trace=trace) for a in step.args]
            code, elapsed, output = _run_fedgate(address, step.title, args, certs)
            ok = code == step.expect_exit and step.shows in output
            results.append((step.title, step.expect, ok, code, elapsed))
    except processes.StartupFailed as exc:
        fail(str(exc))
    finally:
        processes.stop(children)
    print_table(
        "demo summary",
        ["scenario", "expected", "exit", "seconds", "ok"],
        [
            (title, expect, code, f"{elapsed:.2f}", "yes" if ok else "NO")
            for title, expect, ok, code, elapsed in results
        ],
    )
    console.print(f"logs: {logs}/  — every process stopped")
    if not all(ok for _, _, ok, _, _ in results):
        fail("a scenario did not end as expected")
