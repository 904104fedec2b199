"""The benchmark's server processes: gateway, echo domain and bare proxy, on loopback.

Each is its own child process. Readiness is polled with a bound (ready file, then
gRPC health; for the echo domain also its registration with the gateway), never
awaited by sleeping. `Cluster.stop` stops every child, newest first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.cli import processes
from gateway.services import metadata

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0
WRAPPER_STOP_TIMEOUT = 60.0


@dataclass
class Cluster:
    """Started children and their addresses."""

    work_dir: Path
    wrappers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """argv prefix per child name, for example a profiler (`py-spy record ... --`)."""
    children: list[processes.Child] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        """Where every child's output goes."""
        return self.work_dir / "logs"

    def pids(self) -> dict[str, int]:
        """Process id of each child, by name."""
        return {c.name: c.process.pid for c in self.children}

    def start_all(
        self, gateway_log_level: str, *, proxy: bool = True, audit_mode: str = "strict"
    ) -> None:
        """Starts the gateway, the echo domain (registered) and the proxy in front of it."""
        self._start_gateway(gateway_log_level, audit_mode)
        self._start_echo()
        if proxy:
            self._start_proxy()

    def stop(self) -> None:
        """Stops every child (SIGTERM, then SIGKILL past a bound); safe to call twice.

        Wrapped children get SIGINT first, so a profiler writes its output.
        """
        children, self.children = self.children, []
        wrapped = [c for c in children if c.name in self.wrappers]
        try:
            processes.stop([c for c in children if c not in wrapped])
            for child in wrapped:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):  # escalated below
                    child.process.wait(WRAPPER_STOP_TIMEOUT)
        finally:
            processes.stop(wrapped)

    def _start(self, name: str, module: str, *args: str, env: dict[str, str] | None = None) -> str:
        ready = self.work_dir / f"{name}.addr"
        ready.unlink(missing_ok=True)
        env = {
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            # Every hop is measured in plaintext, like the bare proxy it is compared with:
            # the gateway and the echo domain run --insecure (mTLS is the default).
            "FEDGATE_INSECURE": "1",
            # The gateway's shared policy: `bench` may invoke echo (bench/policies/).
            "FEDGATE_POLICY__SEED_DIR": str(REPO_ROOT / "bench" / "policies"),
            **(env or {}),
        }
        argv = processes.python_module(module, *args, "--ready-file", str(ready))
        argv = [*self.wrappers.get(name, ()), *argv]
        child = processes.start(
            name,
            argv,
            self.log_dir,
            env,
        )
        self.children.append(child)
        address = processes.wait_ready_file(child, ready, READY_TIMEOUT)
        processes.wait_for(
            child, lambda: processes.is_serving(address), "health SERVING", READY_TIMEOUT
        )
        self.addresses[name] = address
        return address

    def _start_gateway(self, log_level: str, audit_mode: str) -> None:
        state = self.work_dir / "state"
        self._start(
            "gateway",
            "gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(state),
            "--log-level",
            log_level,
            env={"FEDGATE_AUDIT__MODE": audit_mode},
        )

    def _start_echo(self) -> None:
        self._start("echo", "bench.echo_domain", "--gateway", self.addresses["gateway"])
        gateway = self.children[0]
        processes.wait_for(
            gateway,
            lambda: _is_live(self.addresses["gateway"], "echo"),
            "echo domain registered",
            READY_TIMEOUT,
        )

    def _start_proxy(self) -> None:
        self._start("proxy", "bench.bare_proxy", "--target", self.addresses["echo"])


def _is_live(gateway: str, domain: str) -> bool:
    """True if the gateway lists `domain` with a live endpoint."""
    with grpc.insecure_channel(gateway) as channel:
        try:
            reply = gw_grpc.FederationGatewayStub(channel).ListDomains(
                gw.ListDomainsRequest(),
                timeout=2.0,
                metadata=((metadata.CALLER_DOMAIN, "bench"),),
            )
        except grpc.RpcError:
            return False
    return any(d.name == domain for d in reply.domains)
