"""Two gateway processes on one PostgreSQL: writers racing from one version through both
replicas, exactly one wins per version; a Watch on one replica sees writes made through
the other at once (LISTEN/NOTIFY), and resumes after a disconnect without gaps."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest

from federation.v1 import context_pb2 as ctx
from federation.v1 import context_pb2_grpc as ctx_grpc
from gateway.services import metadata
from tests.e2e.test_policy_replicas import gateway_process

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

TRACE = "replicas-1"
SUPPORT = ((metadata.CALLER_DOMAIN, "support"),)
FINANCE = ((metadata.CALLER_DOMAIN, "finance"),)


def _put(address: str, value: str, expected: int) -> int | str:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = ctx_grpc.ContextServiceStub(channel).Put(
                ctx.PutContextRequest(
                    trace_id=TRACE, key="case", value_json=value, expected_version=expected
                ),
                metadata=SUPPORT,
                timeout=20,
            )
        except grpc.RpcError as exc:
            # ABORTED is the only refusal a racing writer may get; anything else fails.
            return f"{exc.code().name}: {exc.details()}"
    return int(reply.item.version)


def test_two_replicas_one_winner_per_version_and_watch_across(
    postgres_url: str, tmp_path: Path
) -> None:
    # A long poll interval: only NOTIFY can wake the watcher in time.
    env = {"FEDGATE_CONTEXT__WATCH_POLL_INTERVAL": "30"}
    with (
        gateway_process("a", postgres_url, tmp_path, env) as first,
        gateway_process("b", postgres_url, tmp_path, env) as second,
    ):
        assert _put(first, '{"n": 0}', 0) == 1
        with grpc.insecure_channel(first) as channel:
            watch = ctx_grpc.ContextServiceStub(channel).Watch(
                ctx.WatchContextRequest(trace_id=TRACE), metadata=FINANCE, timeout=60
            )
            seen = [next(watch)]  # version 1, already there
            rounds, writers = 4, 6
            for version in range(1, rounds + 1):
                outcomes: list[int | str] = []
                barrier = threading.Barrier(writers)

                def write(
                    index: int,
                    version: int,
                    barrier: threading.Barrier,
                    outcomes: list[int | str],
                ) -> None:
                    barrier.wait()
                    address = first if index % 2 else second
                    outcomes.append(_put(address, f'{{"writer": {index}}}', version))

                threads = [
                    threading.Thread(target=write, args=(i, version, barrier, outcomes))
                    for i in range(writers)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(30)
                winners = [o for o in outcomes if isinstance(o, int)]
                assert winners == [version + 1], outcomes
                assert all(
                    f"current version is {version + 1}" in str(o)
                    for o in outcomes
                    if isinstance(o, str)
                )
                started = time.monotonic()
                seen.append(next(watch))  # written through either replica
                assert time.monotonic() - started < 10
            watch.cancel()
        assert [m.version for m in seen] == list(range(1, rounds + 2))
        # Resume on the other replica after the last revision seen: nothing missed.
        assert _put(second, '{"after": "disconnect"}', rounds + 1) == rounds + 2
        with grpc.insecure_channel(second) as channel:
            resumed = ctx_grpc.ContextServiceStub(channel).Watch(
                ctx.WatchContextRequest(trace_id=TRACE, after_revision=seen[-1].revision),
                metadata=FINANCE,
                timeout=30,
            )
            item = next(resumed)
            resumed.cancel()
        assert (item.version, item.value_json) == (rounds + 2, '{"after":"disconnect"}')
