"""`fedgate demo`: the gateway and the three example domains, the refund flow, a clean stop.

Everything runs as real processes on loopback, with mTLS: a fresh development CA
and certificates (gateway, cli, risk, finance, support) in `<state>/certs`, the
gateway on SQLite in the state folder, then risk, finance and support, each
registering itself. The scenarios go through `fedgate call` exactly as a person
would type them (with `FEDGATE_CERTS=<state>/certs`); then `fedgate context` and
`fedgate audit lineage` show the first refund's shared context: what finance saw,
what was redacted for it, and where support's restricted notes went; last, a large
refund runs as a long-running task that waits for a human approver (`fedgate task`).
The steps themselves are in `gateway.cli.demo_steps`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import typer

from domains.sdk import GatewayClient
from gateway.cli import processes
from gateway.cli.client_commands import print_domains
from gateway.cli.demo_steps import CONTEXT_STEPS, SCENARIOS, TASK_STEPS, CliStep, Scenario
from gateway.cli.output import console, fail, print_table
from gateway.identity import dev_ca
from gateway.identity.credentials import CERTS_ENV, Credentials

DOMAINS = ("risk", "finance", "support")


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


Result = tuple[str, str, bool, int, float]
"""One row of the summary: title, expectation, ok, exit code, seconds."""


def _run_steps(
    address: str, steps: tuple[CliStep, ...], certs: Path, values: dict[str, str]
) -> list[Result]:
    results = []
    for step in steps:
        args = [a.format(**values) for a in step.args]
        code, elapsed, output = _run_fedgate(address, step.title, args, certs)
        ok = code == step.expect_exit and step.shows in output
        results.append((step.title, step.expect, ok, code, elapsed))
    return results


def _run_task_steps(address: str, certs: Path) -> list[Result]:
    """Submits the task, then follows, answers and finishes it by the id it printed."""
    submit, *rest = TASK_STEPS
    code, elapsed, output = _run_fedgate(address, submit.title, list(submit.args), certs)
    lines = output.strip().splitlines()
    task_id = lines[-1].strip() if lines else ""
    ok = code == submit.expect_exit and bool(task_id)
    results: list[Result] = [(submit.title, submit.expect, ok, code, elapsed)]
    if ok:
        results += _run_steps(address, tuple(rest), certs, {"task": task_id})
    return results


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
    dev_ca.issue_federation(certs, ("cli", "auditor", "approver", *DOMAINS))
    cli = Credentials.load(certs, "cli")
    console.print(
        f"mTLS: fresh CA ({cli.trust_domain}) and certificates for the gateway, cli, "
        f"{', '.join(DOMAINS)} in {certs}/",
        highlight=False,
    )
    children: list[processes.Child] = []
    results: list[Result] = []
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
        results += _run_steps(address, CONTEXT_STEPS, certs, {"trace": trace})
        results += _run_task_steps(address, certs)
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
