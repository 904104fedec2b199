"""`fedgate policy ...` against a gateway process, and offline against the policy files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Federation

pytestmark = pytest.mark.e2e


def _fedgate(*args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        input=input_text,
    )


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the terminal width


def test_check_and_explain_offline_against_the_policy_files() -> None:
    denied = _fedgate("policy", "check", "cli", "finance", "issue-refund", "invoke", "--offline")
    assert denied.returncode == 3
    assert (
        "denied cli may not invoke finance/issue-refund (needs invoke on finance/issue-refund)"
        in _flat(denied.stdout)
    )
    explained = _fedgate(
        "policy",
        "explain",
        "finance/agent/risk-check",
        "risk",
        "score",
        "invoke",
        "--offline",
        "--format",
        "json",
    )
    assert explained.returncode == 0, explained.stderr
    assert json.loads(explained.stdout) == {
        "allowed": True,
        "reason": "finance/agent/risk-check may invoke risk/score (as finance): "
        "p, risk-client, risk, score, invoke",
        "rule": "p, risk-client, risk, score, invoke",
        "version": 0,
        "matching_rules": ["p, risk-client, risk, score, invoke"],
        "subjects": ["finance", "finance/agent/risk-check"],
        "roles": ["risk-client in risk"],
    }


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["check", "cli", "finance", "x", "fly", "--offline"], 2, "unknown action 'fly'"),
        (["check", "cli", "Fin", "x", "invoke", "--offline"], 2, "invalid domain 'Fin'"),
        (
            ["check", "cli", "risk", "score", "invoke", "--offline", "--policies", "/nonexistent"],
            2,
            "cannot read the policy",
        ),
        (["add", "p", "cli"], 2, "has 4 values, got 1"),
        (["import", "/nonexistent.csv"], 2, "cannot read '/nonexistent.csv'"),
    ],
)
def test_bad_usage_is_a_one_line_error(args: list[str], code: int, message: str) -> None:
    done = _fedgate("policy", *args)
    assert done.returncode == code, done.stdout + done.stderr
    assert message in _flat(done.stderr)
    assert "Traceback" not in done.stderr


def test_administration_through_the_gateway(federation: Federation, tmp_path: Path) -> None:
    def policy(*args: str, caller: str = "admin") -> subprocess.CompletedProcess[str]:
        return federation.fedgate("policy", *args, "--as", caller)

    live = policy("check", "cli", "finance", "issue-refund", "invoke", caller="cli")
    assert live.returncode == 3, live.stderr
    assert "policy version 1" in live.stdout

    refused = policy("add", "p, cli, finance, issue-refund, invoke", caller="cli")
    assert refused.returncode == 1
    assert (
        "PERMISSION_DENIED: cli may not policy.admin finance (needs policy.admin on finance)"
        in _flat(refused.stderr)
    )

    added = policy("add", "p", "cli", "finance", "issue-refund", "invoke")
    assert added.returncode == 0, added.stderr
    assert "policy version 2: add by admin, 1 added, 0 removed" in added.stdout
    assert policy("check", "cli", "finance", "issue-refund", "invoke", caller="cli").returncode == 0

    explained = policy("explain", "cli", "finance", "issue-refund", "invoke", "--format", "json")
    assert json.loads(explained.stdout)["matching_rules"] == [
        "p, cli, finance, issue-refund, invoke"
    ]

    listed = json.loads(policy("list", "--domain", "finance", "--format", "json").stdout)
    assert listed["version"] == 2
    assert "p, cli, finance, issue-refund, invoke" in listed["rules"]
    assert all(", finance, " in rule for rule in listed["rules"])

    exported = tmp_path / "policy.csv"
    assert policy("export", "--output", str(exported)).returncode == 0
    assert "p, cli, finance, issue-refund, invoke" in exported.read_text()

    removed = policy("remove", "p, cli, finance, issue-refund, invoke")
    assert "policy version 3: remove by admin" in removed.stdout
    assert policy("remove", "p, cli, finance, issue-refund, invoke").stdout.startswith(
        "nothing changed"
    )

    imported = policy("import", str(exported), "--format", "json")
    assert json.loads(imported.stdout)["added"] == ["p, cli, finance, issue-refund, invoke"]

    changes = policy("changes", "--format", "json")
    assert [(c["version"], c["actor"], c["kind"]) for c in json.loads(changes.stdout)] == [
        (1, "seed", "seed"),
        (2, "admin", "add"),
        (3, "admin", "remove"),
        (4, "admin", "import"),
    ]
