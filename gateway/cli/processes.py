"""Child processes for `fedgate demo` and the end-to-end tests: start, await, stop cleanly.

Readiness is awaited by polling (a ready file, then `grpc.health.v1`) with a bound,
never by sleeping a fixed time. Stopping sends SIGTERM (domains deregister, the
gateway drains) and escalates to SIGKILL only past a bound, so nothing is orphaned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.identity.credentials import Credentials
from gateway.services.tls import channel_credentials, gateway_name_options


class StartupFailed(RuntimeError):
    """A child process exited or did not become ready in time."""


@dataclass
class Child:
    """A started child process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the child wrote, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start(
    name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
) -> Child:
    """Starts `argv` with output to `<log_dir>/<name>.log`, in its own process group."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    return Child(name=name, process=process, log_path=log_path, _log=log)


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def wait_for(child: Child, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Polls `condition` until true; fails early if the child exits, or after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise StartupFailed(
                f"{child.name} exited with code {child.process.returncode} before {what}:\n"
                + child.log_tail()
            )
        if condition():
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    raise StartupFailed(
        f"{child.name}: {what} not reached within {timeout:.0f}s:\n{child.log_tail()}"
    )


def wait_ready_file(child: Child, path: Path, timeout: float = 20.0) -> str:
    """Waits until the child wrote its address to `path`; returns it."""
    wait_for(child, path.exists, f"writing {path.name}", timeout)
    return path.read_text().strip()


def is_serving(address: str, service: str = "", credentials: Credentials | None = None) -> bool:
    """True if the gateway's `grpc.health.v1.Health/Check` at `address` answers SERVING.

    With `credentials` the check runs over mTLS (what a gateway that is not
    `--insecure` requires of every client) and verifies the gateway's certificate;
    without, in plaintext.
    """
    channel = (
        grpc.insecure_channel(address)
        if credentials is None
        else grpc.secure_channel(
            address, channel_credentials(credentials), gateway_name_options(credentials)
        )
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def stop(children: Sequence[Child], timeout: float = 10.0) -> None:
    """Stops children newest first: SIGTERM, wait up to `timeout`, then SIGKILL.

    One at a time, so domains deregister while the gateway they registered with
    still runs.
    """
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
        if child._log is not None:
            child._log.close()
