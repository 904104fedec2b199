"""`run_domain` in a real process: serves, registers, and on SIGINT/SIGTERM deregisters
and exits cleanly."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from domains.sdk.testing import eventually, execute
from tests.integration.sdk.conftest import RunningFake

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import asyncio, sys
from domains.sdk import run_domain
from tests.integration.sdk.sample_domain import build_domain
asyncio.run(run_domain(build_domain("risk"), gateway=sys.argv[1]))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_run_domain_shuts_down_cleanly_on_signal(
    gateway: RunningFake, sig: signal.Signals
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        gateway.address,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # A heartbeat proves the process has its lease (it heartbeats only after that).
        await eventually(lambda: gateway.fake.heartbeats, timeout=30)
        endpoint = gateway.fake.registrations[0].request.endpoint.address
        events = await execute(endpoint, "score", {"customer": "a", "amount": 1})
        assert events[-1].output == {"customer": "a", "score": 0.001}

        process.send_signal(sig)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()

    assert process.returncode == 0, stderr.decode()
    (dereg,) = gateway.fake.deregistrations
    assert dereg.request.lease_id == gateway.fake.lease_ids[0]
