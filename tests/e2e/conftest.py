"""Real processes: the gateway (`fedgate serve`) and example domains (`python -m domains.X`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import processes
from gateway.identity import dev_ca
from gateway.identity.credentials import CERTS_ENV, Credentials

IDENTITIES = ("cli", "admin", "approver", "risk", "finance", "support")
"""Parties that get a certificate: the CLI operators (cli, admin, approver), the example domains."""

OBSERVERS = ("cli", "support")
"""Callers whose listings together show every example domain under the default policy."""


@dataclass
class Federation:
    """A running gateway and the domain processes started against it."""

    address: str
    state_dir: Path
    gateway: processes.Child
    certs: Path
    """Certificates of the CA, the gateway and every identity the tests use (mTLS)."""
    domains: dict[str, processes.Child] = field(default_factory=dict)
    """The latest process of each domain."""
    children: list[processes.Child] = field(default_factory=list)
    """Every process started, including ones that were killed and replaced."""

    def start_domain(
        self, name: str, lease_ttl: float = 1.0, extra: tuple[str, ...] = ()
    ) -> processes.Child:
        child = processes.start(
            f"{name}-{len(self.children)}",
            processes.python_module(
                f"domains.{name}",
                "--gateway",
                self.address,
                "--lease-ttl",
                str(lease_ttl),
                "--certs",
                str(self.certs),
                *extra,
            ),
            self.state_dir / "logs",
        )
        self.domains[name] = child
        self.children.append(child)
        return child

    def fedgate(
        self, *args: str, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Runs the CLI against this gateway, as a user would."""
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args, "--gateway", self.address],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            input=input_text,
            env={**os.environ, CERTS_ENV: str(self.certs)},
        )

    def live_domains(self, *callers: str) -> dict[str, Any]:
        """Live domains as `callers` see them (default: the operator `cli` and `support`).

        The default policy shows a caller only the capabilities it may invoke: the
        operator sees support and risk, support sees risk and finance.
        """
        listed: dict[str, Any] = {}
        for caller in callers or OBSERVERS:
            done = self.fedgate("domains", "list", "--format", "json", "--as", caller)
            assert done.returncode == 0, done.stderr
            listed.update({d["name"]: d for d in json.loads(done.stdout)})
        return listed

    def wait_live(self, *names: str, timeout: float = 20.0) -> None:
        processes.wait_for(
            self.gateway,
            lambda: set(names) <= set(self.live_domains()),
            f"domains {names} live",
            timeout,
        )


@contextmanager
def running_federation(state: Path) -> Iterator[Federation]:
    """Starts a gateway on port 0 with fast leases; stops it and every domain on exit.

    Everything runs with mTLS: a fresh CA and certificates in `<state>/certs`, where
    the gateway looks by default.
    """
    certs = state / "certs"
    dev_ca.issue_federation(certs, IDENTITIES)
    ready = state / "gateway.addr"
    gateway = processes.start(
        "gateway",
        processes.python_module(
            "gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(state),
            "--ready-file",
            str(ready),
        ),
        state / "logs",
        env={"FEDGATE_LEASE__MIN_TTL": "0.5", "FEDGATE_LEASE__REAPER_INTERVAL": "0.1"},
    )
    fed = Federation(address="", state_dir=state, gateway=gateway, certs=certs)
    cli = Credentials.load(certs, "cli")
    try:
        fed.address = processes.wait_ready_file(gateway, ready)
        processes.wait_for(gateway, lambda: processes.is_serving(fed.address, "", cli), "SERVING")
        yield fed
    finally:
        processes.stop([gateway, *fed.children])


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    """A fresh gateway with no domains, for one test."""
    with running_federation(tmp_path / "state") as fed:
        yield fed


@pytest.fixture(scope="module")
def risk_federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """A gateway with the risk domain, shared by the read-only tests of a module."""
    with running_federation(tmp_path_factory.mktemp("risk") / "state") as fed:
        fed.start_domain("risk", lease_ttl=15.0)
        fed.wait_live("risk")
        yield fed
