"""Helpers for testing a domain in-process, with or without a gateway.

Example:
    ```python
    from domains.sdk.testing import execute, serve_in_process

    async def test_score() -> None:
        async with serve_in_process(domain) as server:
            events = await execute(server.address, "score", {"amount": 120})
        assert events[-1].output == {"score": 0.2}
    ```

`execute` and `execute_stream` talk to the domain over a real gRPC channel, the way
the gateway does, so tests cover conversion, validation and streaming too.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import grpc

from domains.sdk.context import TaskContext
from domains.sdk.domain import Domain
from domains.sdk.events import TaskEvent, event_from_proto
from domains.sdk.gateway_client import (
    GatewayClient,
    JSONInput,
    json_object,
    translate_rpc_errors,
)
from domains.sdk.server import DomainServer
from federation.v1 import orchestrator_pb2 as orch
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.core.models import CapabilityTarget, Principal, TaskState
from gateway.core.names import parse_capability_ref
from gateway.core.task import TaskInfo
from gateway.identity.credentials import Credentials
from gateway.services import convert, metadata

# ruff: noqa: ASYNC109 - `timeout` is the gRPC deadline sent to the domain server.


@asynccontextmanager
async def serve_in_process(
    domain: Domain,
    *,
    gateway: str | None = None,
    listen: str = "127.0.0.1:0",
    lease_ttl: float | None = None,
    retry_backoff: float = 0.05,
    grace: float = 0.0,
    credentials: Credentials | None = None,
) -> AsyncIterator[DomainServer]:
    """Runs a domain's server on a free loopback port for the duration of the block.

    Args:
        domain: The domain to serve.
        gateway: Gateway `host:port` to register with; None serves standalone.
        listen: Bind address; the default picks a free loopback port.
        lease_ttl: Requested lease length in seconds.
        retry_backoff: First pause after a failed gateway call (short for tests).
        grace: Seconds running tasks get on exit.
        credentials: The domain's certificate, key and CA for mTLS; None serves in
            plaintext (insecure mode), fine for tests on loopback and what
            `execute`/`cancel` below talk to.

    Yields:
        The started server; `server.address` is where to reach it.
    """
    server = DomainServer(
        domain,
        listen=listen,
        gateway=gateway,
        lease_ttl=lease_ttl,
        retry_backoff=retry_backoff,
        credentials=credentials,
        insecure=credentials is None,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace)


async def execute_stream(
    address: str,
    target: str,
    input: JSONInput,
    *,
    task_id: str = "",
    trace_id: str = "",
    caller: str = "tester",
    timeout: float | None = 30.0,
    deadline: datetime | None = None,
    call_path: Sequence[str] = (),
) -> AsyncGenerator[TaskEvent, None]:
    """Executes a capability directly on a domain server and yields its events.

    Sends what the gateway would send: an `ExecuteRequest` and the task metadata.
    Leaving the loop early cancels the call (the handler is canceled too).

    Args:
        address: The domain server's `host:port`.
        target: `capability`, or `domain/capability[@version]`; without a domain
            the server is asked for its name first.
        input: JSON object or pydantic model.
        task_id: Task id; a fresh one if empty.
        trace_id: Trace id; a fresh one if empty.
        caller: Calling domain recorded in the task.
        timeout: gRPC deadline in seconds; None for none.
        deadline: Task deadline carried in the task itself.
        call_path: Call path metadata, as the gateway would send it.

    Raises:
        gateway.errors.GatewayError: The server refused the task (for example
            `NotFound` for an unknown capability, `InvalidRequest` for bad input).
    """
    async with grpc.aio.insecure_channel(address) as channel:
        stub = orch_grpc.DomainOrchestratorStub(channel)
        task = await _task(stub, target, task_id, trace_id, caller, deadline)
        request = orch.ExecuteRequest(
            task=convert.task_to_proto(task, TaskState.SUBMITTED),
            input=convert.json_payload(json_object(input)),
        )
        md = (
            (metadata.TASK_ID, task.task_id),
            (metadata.TRACE_ID, task.trace_id),
            (metadata.CALL_PATH, metadata.encode_call_path(tuple(call_path))),
        )
        call = stub.Execute(request, timeout=timeout, metadata=md)
        try:
            with translate_rpc_errors():
                async for message in call:
                    yield event_from_proto(message)
        finally:
            call.cancel()


async def execute(
    address: str,
    target: str,
    input: JSONInput,
    *,
    task_id: str = "",
    trace_id: str = "",
    caller: str = "tester",
    timeout: float | None = 30.0,
    deadline: datetime | None = None,
    call_path: Sequence[str] = (),
) -> list[TaskEvent]:
    """Executes a capability directly on a domain server and returns every event.

    Arguments are those of `execute_stream`.

    Returns:
        The events in order; the last one is final.

    Raises:
        gateway.errors.GatewayError: The server refused the task.
    """
    stream = execute_stream(
        address,
        target,
        input,
        task_id=task_id,
        trace_id=trace_id,
        caller=caller,
        timeout=timeout,
        deadline=deadline,
        call_path=call_path,
    )
    return [event async for event in stream]


async def cancel(address: str, task_id: str, reason: str = "test") -> bool:
    """Asks a domain server to cancel a running task, as the gateway would.

    Returns:
        True if the task was running and has been told to stop.
    """
    async with grpc.aio.insecure_channel(address) as channel:
        stub = orch_grpc.DomainOrchestratorStub(channel)
        with translate_rpc_errors():
            response = await stub.Cancel(
                orch.CancelRequest(task_id=task_id, reason=reason), timeout=10.0
            )
    return response.found


def local_context(
    domain: str = "test",
    capability: str = "test",
    *,
    gateway: GatewayClient | None = None,
    deadline: timedelta | None = None,
    caller: str = "tester",
) -> tuple[TaskContext, list[str]]:
    """A `TaskContext` for unit-testing handlers and agents without a server.

    Args:
        domain: Domain the task runs in.
        capability: Capability the task runs.
        gateway: Client for nested calls; None makes `ctx.call` raise.
        deadline: Time from now until the task's deadline; None for none.
        caller: Calling domain recorded in the task.

    Returns:
        The context and the list its progress notes are appended to.
    """
    notes: list[str] = []

    async def record(message: str) -> None:
        notes.append(message)

    task = TaskInfo(
        task_id=uuid.uuid4().hex,
        trace_id=uuid.uuid4().hex,
        caller=Principal(caller),
        target=CapabilityTarget(domain, capability),
        deadline=None if deadline is None else datetime.now(UTC) + deadline,
        call_path=(f"{domain}/{capability}",),
    )
    return TaskContext(task, reporter=record, gateway=gateway), notes


async def eventually(
    condition: Callable[[], object | Awaitable[object]],
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> None:
    """Polls `condition` until it is truthy; bounded, so tests never hang.

    Args:
        condition: Sync or async function; polled until it returns a truthy value.
        timeout: Seconds to keep polling.
        interval: Seconds between polls.
        message: Explanation for the failure.

    Raises:
        AssertionError: The condition did not hold within `timeout`.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if loop.time() >= give_up:
            raise AssertionError(message or f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def _task(
    stub: orch_grpc.DomainOrchestratorAsyncStub,
    target: str,
    task_id: str,
    trace_id: str,
    caller: str,
    deadline: datetime | None,
) -> TaskInfo:
    if "/" in target:
        domain, name, version = parse_capability_ref(target)
    else:
        name, _, version = target.partition("@")
        with translate_rpc_errors():
            domain = (await stub.Describe(orch.DescribeRequest(), timeout=10.0)).domain
    return TaskInfo(
        task_id=task_id or uuid.uuid4().hex,
        trace_id=trace_id or uuid.uuid4().hex,
        caller=Principal(caller),
        target=CapabilityTarget(domain, name, version),
        deadline=deadline,
    )
