"""Identities as a user meets them: certificates to create, one-line errors, --insecure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import processes
from gateway.identity.credentials import CERTS_ENV, INSECURE_ENV

pytestmark = pytest.mark.e2e

HINT = "create it with: fedgate certs init --dir .fedgate/certs && fedgate certs issue"


def _run(cwd: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (CERTS_ENV, INSECURE_ENV)}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def test_without_certificates_every_party_says_how_to_create_them(tmp_path: Path) -> None:
    serve = _run(tmp_path, "-m", "gateway", "serve", "--listen", "127.0.0.1:0")
    assert serve.returncode == 1
    assert f"{HINT} --gateway --dir .fedgate/certs" in serve.stderr
    cli = _run(tmp_path, "-m", "gateway", "domains", "list")
    assert cli.returncode == 1
    assert f"{HINT} --domain cli --dir .fedgate/certs" in cli.stderr
    domain = _run(tmp_path, "-m", "domains.risk")
    assert domain.returncode == 1
    assert f"{HINT} --domain risk --dir .fedgate/certs" in domain.stderr
    for done in (serve, cli, domain):
        assert "Traceback" not in done.stderr
        assert not (tmp_path / ".fedgate" / "fedgate.db").exists()


def test_the_tour_commands_create_certificates_the_gateway_accepts(tmp_path: Path) -> None:
    init = _run(tmp_path, "-m", "gateway", "certs", "init")
    assert init.returncode == 0, init.stderr
    issue = _run(
        tmp_path,
        "-m",
        "gateway",
        "certs",
        "issue",
        "--gateway",
        "--domain",
        "cli",
        "--domain",
        "risk",
    )
    assert issue.returncode == 0, issue.stderr
    state = tmp_path / ".fedgate"
    assert {p.name for p in (state / "certs").iterdir()} >= {
        "ca.pem",
        "gateway.pem",
        "cli-key.pem",
        "risk.pem",
    }
    ready = tmp_path / "gateway.addr"
    gateway = processes.start(
        "gateway",
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(state),
            "--ready-file",
            str(ready),
        ],
        tmp_path / "logs",
    )
    children = [gateway]
    try:
        address = processes.wait_ready_file(gateway, ready)
        children.append(
            processes.start(
                "risk",
                [
                    sys.executable,
                    "-m",
                    "domains.risk",
                    "--gateway",
                    address,
                    "--certs",
                    str(state / "certs"),
                ],
                tmp_path / "logs",
            )
        )

        def risk_listed() -> bool:
            done = _run(
                tmp_path, "-m", "gateway", "domains", "list", "-g", address, "--format", "json"
            )
            return done.returncode == 0 and "risk" in {d["name"] for d in json.loads(done.stdout)}

        processes.wait_for(gateway, risk_listed, "risk registered over mTLS")
        # A plaintext client gets no answer at all from the mTLS gateway.
        plain = _run(
            tmp_path, "-m", "gateway", "domains", "list", "-g", address, "--insecure", timeout=60
        )
        assert plain.returncode == 1
        assert "UNAVAILABLE" in plain.stderr
    finally:
        processes.stop(children)


def test_insecure_mode_works_end_to_end_and_says_so_loudly(tmp_path: Path) -> None:
    ready = tmp_path / "gateway.addr"
    gateway = processes.start(
        "gateway",
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(tmp_path / "state"),
            "--ready-file",
            str(ready),
        ],
        tmp_path / "logs",
    )
    children = [gateway]
    try:
        address = processes.wait_ready_file(gateway, ready)
        children.append(
            processes.start(
                "risk",
                [sys.executable, "-m", "domains.risk", "--gateway", address, "--insecure"],
                tmp_path / "logs",
            )
        )

        def score() -> subprocess.CompletedProcess[str]:
            return _run(
                tmp_path,
                "-m",
                "gateway",
                "call",
                "risk/score",
                "--insecure",
                "-g",
                address,
                "--format",
                "json",
                "--input",
                json.dumps({"customer_id": "c-1001", "order_id": "o-1", "amount": 10}),
            )

        processes.wait_for(gateway, lambda: score().returncode == 0, "risk/score answers")
        done = score()
        assert json.loads(done.stdout)["state"] == "completed"
        assert "INSECURE MODE" in done.stderr
        assert "INSECURE MODE" in gateway.log_tail(200)
        assert "INSECURE MODE" in children[1].log_tail(200)
    finally:
        processes.stop(children)
