"""The example federation as separate processes, driven through the `fedgate` CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import processes
from gateway.identity import dev_ca
from gateway.identity.credentials import CERTS_ENV

from .conftest import Federation

pytestmark = pytest.mark.e2e

REFUND = {"customer_id": "c-1001", "order_id": "o-1", "amount": 42.5, "reason": "broken"}


def test_refund_flow_through_the_cli(federation: Federation, tmp_path: Path) -> None:
    for name in ("risk", "finance", "support"):
        federation.start_domain(name)
    federation.wait_live("risk", "finance", "support")

    listed = federation.live_domains()
    assert [c["name"] for c in listed["risk"]["capabilities"]] == ["score"]
    assert listed["risk"]["capabilities"][0]["idempotent"] is True

    request = tmp_path / "refund.json"
    request.write_text(json.dumps(REFUND))
    done = federation.fedgate(
        "call", "support/open-refund-case", "--input", f"@{request}", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["state"] == "completed"
    assert result["output"]["status"] == "refunded"
    assert result["output"]["refund_id"].startswith("rf-")
    assert len(result["trace_id"]) == 32

    escalated = federation.fedgate(
        "call",
        "support/open-refund-case",
        "--format",
        "json",
        "--input",
        "-",
        input_text=json.dumps({**REFUND, "customer_id": "c-new", "amount": 5000}),
    )
    assert escalated.returncode == 3, escalated.stderr
    assert json.loads(escalated.stdout)["state"] == "input-required"
    assert "approve the refund manually" in json.loads(escalated.stdout)["message"]

    described = federation.fedgate(
        "domains", "describe", "finance", "--format", "json", "--as", "support"
    )
    assert json.loads(described.stdout)["capabilities"][0]["name"] == "issue-refund"

    # The operator may not pay refunds itself (policies/policy.csv), and finance stays
    # hidden from it: the call is refused before it reaches finance.
    refused = federation.fedgate(
        "call",
        "finance/issue-refund",
        "--input",
        json.dumps({"case_id": "x", "customer_id": "c-1001", "order_id": "o-1", "amount": 1}),
    )
    assert refused.returncode == 1
    assert (
        "PERMISSION_DENIED: cli may not invoke finance/issue-refund "
        "(needs invoke on finance/issue-refund)"
    ) in " ".join(refused.stderr.split())
    assert "finance" not in federation.live_domains("cli")
    hidden = federation.fedgate("domains", "describe", "finance")
    assert hidden.returncode == 1
    assert "NOT_FOUND" in hidden.stderr


def test_stream_shows_progress(risk_federation: Federation) -> None:
    done = risk_federation.fedgate(
        "call",
        "risk/score",
        "--stream",
        "--format",
        "json",
        "--input",
        json.dumps({"customer_id": "c-1002", "order_id": "o", "amount": 10}),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    events = [json.loads(line) for line in lines if line.startswith('{"sequence"')]
    assert events[0]["state"] == "submitted"
    assert any("agent risk/model-scorer: started" in e["message"] for e in events)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["call", "risk/score", "--input", "{not json"], 2, "--input is not valid JSON"),
        (["call", "risk/score", "--input", "[1]"], 2, "--input must be a JSON object"),
        (["call", "risk/score", "--input", "@/nonexistent.json"], 2, "cannot read input file"),
        (["call", "risk", "--input", "{}"], 2, "expected DOMAIN/CAPABILITY"),
        (["call", "risk/score", "--input", '{"amount": 1}'], 2, "INVALID_ARGUMENT"),
        (["call", "risk/nothing", "--input", "{}"], 1, "NOT_FOUND"),
        (["domains", "describe", "ghost"], 1, "NOT_FOUND: domain 'ghost' is not registered"),
    ],
)
def test_bad_input_gets_a_one_line_error(
    risk_federation: Federation, args: list[str], code: int, message: str
) -> None:
    done = risk_federation.fedgate(*args)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_gateway_is_a_clear_error(tmp_path: Path) -> None:
    dev_ca.issue_federation(tmp_path, ("cli",))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "domains", "list", "--gateway", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, CERTS_ENV: str(tmp_path)},
    )
    assert done.returncode == 1
    assert "UNAVAILABLE" in done.stderr
    assert "Traceback" not in done.stderr


def test_killed_domain_fails_calls_then_leaves_routing_and_comes_back(
    federation: Federation,
) -> None:
    for name in ("risk", "finance", "support"):
        federation.start_domain(name)
    federation.wait_live("risk", "finance", "support")

    risk = federation.domains["risk"]
    os.kill(risk.process.pid, signal.SIGKILL)
    risk.process.wait()
    # Until its lease runs out the dead endpoint is still routed to: calls fail cleanly.
    done = federation.fedgate(
        "call", "support/open-refund-case", "--format", "json", "--input", json.dumps(REFUND)
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    failure = json.loads(done.stdout)
    assert failure["state"] == "failed"
    assert "risk" in failure["message"]

    # The lease (1 s) expires and the reaper takes risk out of routing; history stays.
    processes.wait_for(
        federation.gateway, lambda: "risk" not in federation.live_domains(), "risk expired", 15
    )
    everything = federation.fedgate("domains", "list", "--all", "--format", "json")
    assert "risk" in {d["name"] for d in json.loads(everything.stdout)}
    no_endpoint = federation.fedgate(
        "call",
        "risk/score",
        "--input",
        json.dumps({"customer_id": "c", "order_id": "o", "amount": 1}),
    )
    assert no_endpoint.returncode == 1
    assert "UNAVAILABLE" in no_endpoint.stderr

    federation.start_domain("risk")
    federation.wait_live("risk")
    again = federation.fedgate(
        "call", "support/open-refund-case", "--format", "json", "--input", json.dumps(REFUND)
    )
    assert again.returncode == 0, again.stderr


def test_demo_runs_and_leaves_no_process_behind(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo summary" in done.stdout
    summary = done.stdout.split("demo summary")[1]
    # Five calls, four shared-context steps (finance's redacted view, support's own
    # notes, a stale write, the notes' lineage), then five task steps (submit, watch until
    # it waits, the operator refused, the approver answers, watch to completion).
    assert summary.count("│ yes │") == 14, summary
    assert "│ NO  │" not in summary
    assert "[redacted: restricted context may not flow from support to finance" in " ".join(
        done.stdout.split()
    )
    assert "cli may not invoke finance/issue-refund" in " ".join(done.stdout.split())
    assert "cli may not respond support/open-refund-case" in " ".join(done.stdout.split())
    address = (state / "gateway.addr").read_text()
    leftovers = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if address in cmdline or str(state) in cmdline:
                leftovers.append(cmdline)
    assert leftovers == []
