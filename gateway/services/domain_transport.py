"""Runs tasks on domain endpoints over gRPC (`DomainOrchestrator` Execute, Cancel, Attach, Respond).

With mTLS the channel's handshake checks that the endpoint proves the identity of
the domain it was registered for (see `channels.py`). When it does not, the task
never leaves the gateway: the attempt is recorded as `identity.refused` and the
call fails with `DomainUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import grpc

from federation.v1 import common_pb2 as pb
from federation.v1 import orchestrator_pb2 as orch
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.models import Payload, TaskState, TaskUpdate
from gateway.core.ports import AuditSink
from gateway.core.task import TaskInfo
from gateway.errors import (
    DeadlineExceeded,
    DomainUnavailable,
    GatewayError,
    InvalidRequest,
    TaskNotFound,
)
from gateway.services import convert, metadata, status_map
from gateway.services.channels import ChannelPool
from gateway.services.context_convert import view_to_proto


class GrpcDomainTransport:
    """`DomainTransport` over long-lived gRPC channels from a `ChannelPool`."""

    def __init__(self, pool: ChannelPool, *, audit: AuditSink | None = None) -> None:
        """Creates the transport.

        Args:
            pool: Channels to the endpoints.
            audit: Where endpoints that fail to prove their domain's identity are
                recorded (None: not recorded).
        """
        self._pool = pool
        self._audit = audit
        # A stub is cheap to keep and costs a few µs to build: one per endpoint.
        self._stubs: dict[tuple[str, str], orch_grpc.DomainOrchestratorAsyncStub] = {}

    def _stub(self, address: str, domain: str) -> orch_grpc.DomainOrchestratorAsyncStub:
        stub = self._stubs.get((domain, address))
        if stub is None:
            stub = orch_grpc.DomainOrchestratorStub(self._pool.get(address, domain))
            self._stubs[(domain, address)] = stub
        return stub

    async def discard(self, address: str) -> None:
        """Forgets an endpoint that left routing and closes its channel."""
        for key in [k for k in self._stubs if k[1] == address]:
            del self._stubs[key]
        await self._pool.discard(address)

    async def execute(
        self, address: str, task: TaskInfo, input: Payload, time_limit: float | None
    ) -> AsyncGenerator[TaskUpdate, None]:
        """Streams a task's updates from the endpoint at `address`."""
        stub = self._stub(address, task.target.domain)
        request = orch.ExecuteRequest(
            context=[view_to_proto(v) for v in task.context],
            context_grant=task.context_grant,
            detached=task.detached,
        )
        convert.fill_task(request.task, task, TaskState.SUBMITTED)
        convert.fill_payload(request.input, input)
        call = stub.Execute(request, timeout=time_limit, metadata=_task_metadata(task))
        try:
            async for event in call:
                # The gateway only passes the output on: no need to parse it.
                update = convert.update_from_proto(event, parse_output=False)
                if update.final:
                    await _end_of_stream(call)
                yield update
        except grpc.aio.AioRpcError as exc:
            reason = _identity_failure(exc) if self._pool.secure else ""
            if reason:
                raise await self._refuse_endpoint(task, address, reason) from None
            raise _translate(exc, task, address) from None
        except InvalidRequest as exc:
            # The domain sent something we cannot read: its fault, not the caller's.
            raise DomainUnavailable(
                f"domain {task.target.domain!r} sent a malformed event: {exc.message}"
            ) from None
        finally:
            # Leaving early (caller canceled, error) must stop the domain's work too.
            if not call.done():
                call.cancel()

    async def cancel(self, address: str, task_id: str, reason: str) -> bool:
        """Asks the endpoint to cancel `task_id` (one this gateway started there)."""
        channel = self._pool.find(address)
        if channel is None:
            return False  # no channel: this gateway runs nothing there
        stub = orch_grpc.DomainOrchestratorStub(channel)
        try:
            response = await stub.Cancel(
                orch.CancelRequest(task_id=task_id, reason=reason), timeout=5.0
            )
        except grpc.aio.AioRpcError:
            return False
        return response.found

    async def attach(
        self, address: str, domain: str, task_id: str, after: int
    ) -> AsyncGenerator[TaskUpdate, None]:
        """Follows a detached task on the endpoint again, after domain position `after`."""
        call = self._stub(address, domain).Attach(
            orch.AttachRequest(task_id=task_id, after_sequence=after)
        )
        try:
            async for event in call:
                yield convert.update_from_proto(event, parse_output=False)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise TaskNotFound(exc.details() or f"{address} does not know {task_id}") from None
            raise DomainUnavailable(
                f"endpoint {address} of domain {domain!r}: {exc.code().name}: {exc.details()}"
            ) from None
        except InvalidRequest as exc:
            raise DomainUnavailable(
                f"domain {domain!r} sent a malformed event: {exc.message}"
            ) from None
        finally:
            if not call.done():
                call.cancel()

    async def respond(
        self, address: str, domain: str, task_id: str, answer: Payload, responder: str
    ) -> None:
        """Hands a human's answer to the task waiting for it on the endpoint."""
        request = orch.RespondRequest(
            task_id=task_id, input=convert.payload_to_proto(answer), responder=responder
        )
        try:
            await self._stub(address, domain).Respond(request, timeout=10.0)
        except grpc.aio.AioRpcError as exc:
            error = status_map.ERROR_OF.get(exc.code())
            if error is None or error is DomainUnavailable:
                raise DomainUnavailable(
                    f"endpoint {address} of domain {domain!r}: {exc.code().name}: {exc.details()}"
                ) from None
            raise error(exc.details() or exc.code().name) from None

    async def cancel_task(self, address: str, domain: str, task_id: str, reason: str) -> bool:
        """Asks the endpoint to cancel a task, whichever gateway instance started it."""
        try:
            response = await self._stub(address, domain).Cancel(
                orch.CancelRequest(task_id=task_id, reason=reason), timeout=5.0
            )
        except grpc.aio.AioRpcError:
            return False
        return response.found

    async def close(self) -> None:
        """Closes every channel."""
        self._stubs.clear()
        await self._pool.close()

    async def _refuse_endpoint(self, task: TaskInfo, address: str, reason: str) -> GatewayError:
        expected = self._pool.expected_identity(task.target.domain)
        if self._audit is not None:
            await self._audit.record(
                [
                    AuditEvent(
                        type=EventType.IDENTITY_REFUSED,
                        actor="gateway",
                        source_domain=task.caller.domain,
                        target_domain=task.target.domain,
                        capability=f"{task.target.domain}/{task.target.name}",
                        trace_id=task.trace_id,
                        task_id=task.task_id,
                        outcome="refused",
                        attributes={"address": address, "expected": expected, "reason": reason},
                    )
                ]
            )
        return DomainUnavailable(
            f"endpoint {address} of domain {task.target.domain!r} did not prove identity "
            f"{expected} ({reason}); the task was not sent"
        )


STREAM_END_GRACE = 0.5
"""Seconds a domain has to end its Execute stream after the final event before it is canceled."""


async def _end_of_stream(call: grpc.aio.UnaryStreamCall[orch.ExecuteRequest, pb.TaskEvent]) -> None:
    """Reads the stream's end (its status) after the final event.

    The domain ends the stream right after its final event. Reading that end costs
    both sides less than canceling the call (the consumer stops at the final event),
    and the call's response iterator finishes instead of being finalised later. What
    comes after the final event does not change the task's outcome: extra events and
    an error status are ignored, and a domain that keeps the stream open is canceled
    after `STREAM_END_GRACE` seconds.
    """
    if call.done():
        return
    # A timer handle rather than `asyncio.timeout`, which costs several times as much
    # (this runs on every call). When it fires it cancels the call, and grpc.aio ends
    # the read with CancelledError: ours to swallow unless the task itself is canceled.
    lingering = asyncio.get_running_loop().call_later(STREAM_END_GRACE, call.cancel)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError:
        pass
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not call.cancelled() or (task is not None and task.cancelling()):
            raise
    finally:
        lingering.cancel()


_IDENTITY_FAILURES = (
    # What gRPC (BoringSSL) reports when the handshake fails, most specific first.
    ("hostname verification", "it presented the certificate of another identity"),
    ("not in peer certificate", "it presented the certificate of another identity"),
    ("certificate_verify_failed", "its certificate was not issued by the federation CA"),
    ("handshake failed", "the TLS handshake failed (does it serve mTLS?)"),
)


def _identity_failure(exc: grpc.aio.AioRpcError) -> str:
    """Why the endpoint failed to prove its identity, or "" for other failures."""
    if exc.code() != grpc.StatusCode.UNAVAILABLE:
        return ""
    details = (exc.details() or "").lower()
    return next((reason for marker, reason in _IDENTITY_FAILURES if marker in details), "")


def _task_metadata(task: TaskInfo) -> tuple[tuple[str, str], ...]:
    return (
        (metadata.TRACE_ID, task.trace_id),
        (metadata.TASK_ID, task.task_id),
        (metadata.PARENT_TASK_ID, task.parent_task_id),
        (metadata.CALL_PATH, metadata.encode_call_path(task.call_path)),
    )


def _translate(exc: grpc.aio.AioRpcError, task: TaskInfo, address: str) -> GatewayError:
    code = exc.code()
    target = f"{task.target} at {address}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"deadline exceeded while {target} was running task {task.task_id}")
    # CANCELLED here comes from the domain's side (a caller's cancellation reaches us
    # as asyncio cancellation instead): the endpoint stopped mid-call.
    if code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    ):
        return DomainUnavailable(f"{target} failed or went away: {exc.details()}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidRequest(f"{target} refused the input: {exc.details()}")
    return DomainUnavailable(f"{target} answered {code.name}: {exc.details()}")
