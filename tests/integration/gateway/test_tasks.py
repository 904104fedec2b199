"""Long-running tasks through a real gateway and domain: submit, watch, cancel, respond,
and re-attaching after a gateway restart (or failing with the reason when it cannot)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from domains.sdk import Domain, GatewayClient, TaskClient, TaskContext, TaskState
from domains.sdk.testing import eventually, serve_in_process
from gateway.errors import DomainUnavailable, FailedPrecondition, NotFound, PolicyDenied
from gateway.server import GatewayApp, build_gateway
from gateway.settings import PolicySettings, Settings, TaskSettings

from .conftest import gateway_settings, wait_live

POLICIES = Path(__file__).with_name("task_policies")


class Job(BaseModel):
    steps: int = 1


class Done(BaseModel):
    steps: int
    approved_by: str = ""


def desk_domain() -> Domain:
    """`desk/work` reports progress; `desk/approve` asks a human; `desk/hold` waits."""
    domain = Domain(name="desk", owner="tests")
    domain.calls = 0  # type: ignore[attr-defined]
    domain.waiting = asyncio.Event()  # type: ignore[attr-defined]
    domain.canceled = asyncio.Event()  # type: ignore[attr-defined]
    domain.release = asyncio.Event()  # type: ignore[attr-defined]

    @domain.capability("work")
    async def work(ctx: TaskContext, job: Job) -> Done:
        domain.calls += 1  # type: ignore[attr-defined]
        for step in range(job.steps):
            await ctx.report(f"step {step + 1} of {job.steps}")
        return Done(steps=job.steps)

    @domain.capability("approve")
    async def approve(ctx: TaskContext, job: Job) -> Done:
        domain.calls += 1  # type: ignore[attr-defined]
        answer = await ctx.ask(f"approve {job.steps} steps?")
        if answer.input.get("approved") is not True:
            raise RuntimeError(f"declined by {answer.responder}")
        return Done(steps=job.steps, approved_by=answer.responder)

    @domain.capability("hold")
    async def hold(ctx: TaskContext, job: Job) -> Done:
        domain.calls += 1  # type: ignore[attr-defined]
        domain.waiting.set()  # type: ignore[attr-defined]
        try:
            await domain.release.wait()  # type: ignore[attr-defined]
        except asyncio.CancelledError:
            domain.canceled.set()  # type: ignore[attr-defined]
            raise
        return Done(steps=job.steps)

    return domain


def task_settings(tmp_path: Path, **tasks: float) -> Settings:
    return gateway_settings(
        tmp_path,
        policy=PolicySettings(seed_dir=POLICIES),
        tasks=TaskSettings(lease_ttl=2.0, reattach_grace=tasks.get("grace", 5.0)),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return task_settings(tmp_path)


@pytest.fixture
async def desk(gateway: GatewayApp, client: GatewayClient) -> AsyncIterator[Domain]:
    domain = desk_domain()
    async with serve_in_process(domain, gateway=gateway.address):
        await wait_live(client, "desk")
        yield domain


async def _until(tasks: TaskClient, task_id: str, *states: TaskState) -> None:
    async def reached() -> bool:
        try:
            return (await tasks.get(task_id)).state in states
        except DomainUnavailable:
            return False  # a gateway restarting in the test

    await eventually(reached, timeout=10, message=f"task {task_id} never reached {states}")


async def test_a_submitted_task_runs_and_is_stored(client: GatewayClient, desk: Domain) -> None:
    tasks = TaskClient(client)
    record = await tasks.submit("desk/work", {"steps": 3})
    assert record.state is TaskState.SUBMITTED  # answered before it ran
    events = [e async for e in tasks.watch(record.task_id)]
    done = await tasks.get(record.task_id)
    assert done.state is TaskState.COMPLETED
    assert done.output == {"steps": 3, "approved_by": ""}
    assert done.owner == ""  # ended: no instance holds it
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert [e.message for e in events if e.message.startswith("step")] == [
        "step 1 of 3",
        "step 2 of 3",
        "step 3 of 3",
    ]
    assert events[0].state is TaskState.SUBMITTED
    assert events[-1].final
    listed = await tasks.list(states=[TaskState.COMPLETED], domain="desk")
    assert [t.task_id for t in listed] == [record.task_id]
    assert [t.task_id for t in await tasks.list(trace_id=record.trace_id)] == [record.task_id]
    assert await tasks.list(states=[TaskState.WORKING]) == []


async def test_watch_resumes_after_a_position(client: GatewayClient, desk: Domain) -> None:
    tasks = TaskClient(client)
    record = await tasks.submit("desk/work", {"steps": 4})
    everything = [e async for e in tasks.watch(record.task_id)]
    tail = [e async for e in tasks.watch(record.task_id, after=3)]
    assert tail == everything[3:]
    assert tail[0].sequence == 4


async def test_the_same_idempotency_key_returns_the_first_task(
    client: GatewayClient, desk: Domain
) -> None:
    tasks = TaskClient(client)
    first = await tasks.submit("desk/work", {"steps": 1}, idempotency_key="once")
    again = await tasks.submit("desk/work", {"steps": 1}, idempotency_key="once")
    assert again.task_id == first.task_id
    await _until(tasks, first.task_id, TaskState.COMPLETED)
    assert desk.calls == 1  # type: ignore[attr-defined]


async def test_refusals_are_rpc_errors_and_store_nothing(
    client: GatewayClient, desk: Domain
) -> None:
    tasks = TaskClient(client)
    with pytest.raises(NotFound):
        await tasks.submit("desk/nothing", {})
    assert await tasks.list() == []


async def test_cancel_reaches_the_domain(client: GatewayClient, desk: Domain) -> None:
    tasks = TaskClient(client)
    record = await tasks.submit("desk/hold", {})
    await eventually(desk.waiting.is_set, timeout=5)  # type: ignore[attr-defined]
    await _until(tasks, record.task_id, TaskState.WORKING)
    canceled = await tasks.cancel(record.task_id, "changed my mind")
    assert canceled.state is TaskState.CANCELED
    assert "changed my mind" in canceled.message
    assert desk.canceled.is_set()  # type: ignore[attr-defined]


async def test_input_required_then_respond_completes(
    gateway: GatewayApp, client: GatewayClient, desk: Domain
) -> None:
    tasks = TaskClient(client)
    record = await tasks.submit("desk/approve", {"steps": 2})
    await _until(tasks, record.task_id, TaskState.INPUT_REQUIRED)
    paused = await tasks.get(record.task_id)
    assert paused.message == "approve 2 steps?"
    async with GatewayClient(gateway.address, domain="approver", insecure=True) as human:
        approvers = TaskClient(human)
        assert [t.task_id for t in await approvers.list()] == [record.task_id]  # may oversee
        resumed = await approvers.respond(record.task_id, {"approved": True})
    assert resumed.state is not TaskState.INPUT_REQUIRED
    await _until(tasks, record.task_id, TaskState.COMPLETED)
    done = await tasks.get(record.task_id)
    assert done.output == {"steps": 2, "approved_by": "approver"}
    assert desk.calls == 1  # type: ignore[attr-defined]


async def test_respond_needs_the_policy_and_a_waiting_task(
    gateway: GatewayApp, client: GatewayClient, desk: Domain
) -> None:
    tasks = TaskClient(client)
    record = await tasks.submit("desk/approve", {"steps": 1})
    await _until(tasks, record.task_id, TaskState.INPUT_REQUIRED)
    with pytest.raises(PolicyDenied, match="respond"):
        await tasks.respond(record.task_id, {"approved": True})  # the submitter is no approver
    async with GatewayClient(gateway.address, domain="stranger", insecure=True) as other:
        with pytest.raises(NotFound):
            await TaskClient(other).get(record.task_id)
        with pytest.raises(NotFound):
            await TaskClient(other).respond(record.task_id, {"approved": True})
    assert (await tasks.get(record.task_id)).state is TaskState.INPUT_REQUIRED
    async with GatewayClient(gateway.address, domain="approver", insecure=True) as human:
        await TaskClient(human).respond(record.task_id, {"approved": True})
        await _until(tasks, record.task_id, TaskState.COMPLETED)
        with pytest.raises(FailedPrecondition, match="not waiting for input"):
            await TaskClient(human).respond(record.task_id, {"approved": True})


async def _restart(app: GatewayApp, settings: Settings) -> GatewayApp:
    """Stops the gateway and starts it again on the same port and database."""
    port = app.port
    await app.stop(0)
    again = build_gateway(settings.model_copy(update={"listen": f"127.0.0.1:{port}"}))
    await again.start()
    return again


async def test_a_restarted_gateway_reattaches_without_running_twice(
    settings: Settings, tmp_path: Path
) -> None:
    domain = desk_domain()
    app = build_gateway(settings)
    await app.start()
    try:
        async with (
            GatewayClient(app.address, domain="caller", insecure=True) as client,
            serve_in_process(domain, gateway=app.address),
        ):
            await wait_live(client, "desk")
            tasks = TaskClient(client)
            record = await tasks.submit("desk/approve", {"steps": 5})
            await _until(tasks, record.task_id, TaskState.INPUT_REQUIRED)
            app = await _restart(app, settings)
            assert app.tasks is not None
            await eventually(lambda: record.task_id in app.tasks.following, timeout=5)  # type: ignore[union-attr]
            async with GatewayClient(app.address, domain="approver", insecure=True) as human:
                await TaskClient(human).respond(record.task_id, {"approved": True})
            await _until(tasks, record.task_id, TaskState.COMPLETED)
            events = [e async for e in tasks.watch(record.task_id)]
    finally:
        await app.stop(0)
    assert domain.calls == 1  # type: ignore[attr-defined]  # re-attached, never re-run
    assert any("re-attached" in e.message for e in events)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


async def test_a_task_its_domain_forgot_fails_with_the_reason(
    settings: Settings, tmp_path: Path
) -> None:
    app = build_gateway(settings)
    await app.start()
    try:
        async with GatewayClient(app.address, domain="caller", insecure=True) as client:
            first = desk_domain()
            async with serve_in_process(first, gateway=app.address) as server:
                await wait_live(client, "desk")
                tasks = TaskClient(client)
                record = await tasks.submit("desk/hold", {})
                await eventually(first.waiting.is_set, timeout=5)  # type: ignore[attr-defined]
                await _until(tasks, record.task_id, TaskState.WORKING)
                port = app.port
                await app.stop(0)  # the gateway goes; the domain keeps the task
                address = server.address
            # The domain restarts at the same address: it no longer knows the task.
            async with serve_in_process(desk_domain(), listen=address):
                app = build_gateway(settings.model_copy(update={"listen": f"127.0.0.1:{port}"}))
                await app.start()
                await _until(tasks, record.task_id, TaskState.FAILED)
                failed = await tasks.get(record.task_id)
    finally:
        await app.stop(0)
    assert "no longer knows it" in failed.message
    assert failed.error is not None
    assert failed.error.code == "domain_unavailable"
