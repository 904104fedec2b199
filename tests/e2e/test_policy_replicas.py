"""Two gateway processes on one PostgreSQL: a policy change on one is enforced by the other
within a second, through LISTEN/NOTIFY, and through the version poll when notifications
are off."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
import pytest

from federation.v1 import policy_pb2 as pol
from federation.v1 import policy_pb2_grpc as pol_grpc
from gateway.cli import processes
from gateway.services import metadata

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RULE = pol.PolicyRule(ptype="p", values=["cli", "finance", "issue-refund", "invoke"])
CHECK = pol.CheckRequest(subject="cli", domain="finance", object="issue-refund", action="invoke")


@contextmanager
def gateway_process(
    name: str, database_url: str, state: Path, env: dict[str, str]
) -> Iterator[str]:
    """`fedgate serve` on port 0 against `database_url`; yields its address."""
    ready = state / f"{name}.addr"
    child = processes.start(
        name,
        processes.python_module(
            "gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(state / name),
            "--database-url",
            database_url,
            "--ready-file",
            str(ready),
        ),
        state / "logs",
        # Plaintext with asserted identities where mTLS is the default: the test is
        # about policy distribution, not identity.
        env={"FEDGATE_TLS__INSECURE": "true", **env},
    )
    try:
        address = processes.wait_ready_file(child, ready, timeout=30)
        processes.wait_for(child, lambda: processes.is_serving(address), "SERVING", 30)
        yield address
    finally:
        processes.stop([child])


def _as(caller: str) -> tuple[tuple[str, str], ...]:
    return ((metadata.CALLER_DOMAIN, caller),)


def _allowed(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = pol_grpc.PolicyAdminStub(channel).Check(CHECK, metadata=_as("cli"), timeout=5)
    return bool(reply.allowed)


def _change(address: str, add: bool) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = pol_grpc.PolicyAdminStub(channel)
        call: Callable[..., pol.PolicyChange] = stub.AddPolicy if add else stub.RemovePolicy
        change = call(pol.ChangePolicyRequest(rules=[RULE]), metadata=_as("admin"), timeout=10)
    assert change.changed
    return int(change.version)


def _seconds_until(condition: Callable[[], bool], bound: float = 10.0) -> float:
    """Polls `condition` (bounded) and returns how long it took to hold."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < bound, f"not within {bound}s"
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.parametrize(
    "env",
    [
        # Only NOTIFY can be in time: the poll runs once a minute.
        {"FEDGATE_POLICY__POLL_INTERVAL": "60"},
        # Notifications off (or lost): the version poll alone.
        {"FEDGATE_POLICY__NOTIFY": "false", "FEDGATE_POLICY__POLL_INTERVAL": "0.5"},
    ],
    ids=["notify", "poll"],
)
def test_a_change_on_one_replica_is_enforced_by_the_other_within_a_second(
    postgres_url: str, tmp_path: Path, env: dict[str, str]
) -> None:
    with ExitStack() as stack:
        first = stack.enter_context(gateway_process("first", postgres_url, tmp_path, env))
        second = stack.enter_context(gateway_process("second", postgres_url, tmp_path, env))
        assert not _allowed(first)
        assert not _allowed(second)

        assert _change(first, add=True) == 2
        assert _allowed(first)  # the replica that made the change: at once
        assert _seconds_until(lambda: _allowed(second)) < 1.0

        assert _change(second, add=False) == 3
        assert not _allowed(second)
        assert _seconds_until(lambda: not _allowed(first)) < 1.0
