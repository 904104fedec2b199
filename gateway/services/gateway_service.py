"""The `FederationGateway` servicer: translates messages and maps errors, nothing more."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import NoReturn

import grpc

from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.clock import Clock, utcnow
from gateway.core.decision import Action, Decision, OpenPolicy
from gateway.core.invocation import Invocation
from gateway.core.models import ContextRef, DomainRecord, Principal, TaskUpdate
from gateway.core.pipeline import InvokePipeline
from gateway.core.ports import AuditSink, PolicyDecider
from gateway.core.registry import Registry
from gateway.errors import DomainNotFound, InvalidRequest, PolicyDenied
from gateway.services import convert, metadata
from gateway.services.errors import abort_for
from gateway.services.identity import call_path_of, caller_of

Context = grpc.aio.ServicerContext[object, object]


class GatewayService(gw_grpc.FederationGatewayServicer):
    """Registry and routing RPCs for domain teams and callers.

    Every RPC asks the policy: registration, heartbeats and deregistration need
    `register` on the caller's own domain (and only its own); Invoke is checked
    in the request chain (`PolicyStep`); ListDomains and DescribeDomain show only
    the capabilities the caller may invoke, hide domains with none, and answer
    NOT_FOUND for them, exactly as for an unknown domain.
    """

    def __init__(
        self,
        registry: Registry,
        pipeline: InvokePipeline,
        audit: AuditSink,
        *,
        policy: PolicyDecider | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._registry = registry
        self._pipeline = pipeline
        self._audit = audit
        self._policy: PolicyDecider = policy or OpenPolicy()
        self._clock = clock

    # --- registry -------------------------------------------------------------

    async def RegisterDomain(  # noqa: N802 - gRPC method names are PascalCase
        self, request: gw.RegisterDomainRequest, context: Context
    ) -> gw.RegisterDomainResponse:
        try:
            caller = await self._may_register(caller_of(context), request.domain, "register")
            if not request.HasField("endpoint") or not request.endpoint.address:
                raise InvalidRequest("endpoint.address is required")
            capabilities = [convert.capability_from_proto(c) for c in request.capabilities]
            ttl = (
                request.lease_ttl.ToTimedelta().total_seconds()
                if request.HasField("lease_ttl")
                else None
            )
            lease = await self._registry.register(
                domain=request.domain,
                owner=request.owner,
                address=request.endpoint.address,
                capabilities=capabilities,
                requested_ttl=ttl,
            )
            await self._audit.record(
                [
                    AuditEvent(
                        type=EventType.DOMAIN_REGISTERED,
                        actor=str(caller),
                        source_domain=caller.domain,
                        target_domain=request.domain,
                        outcome="registered",
                        attributes={
                            "address": request.endpoint.address,
                            "lease_id": lease.endpoint.lease_id,
                            "capabilities": [f"{c.name}@{c.version}" for c in capabilities],
                        },
                    )
                ]
            )
        except Exception as exc:
            await abort_for(context, exc)
        return gw.RegisterDomainResponse(
            lease_id=lease.endpoint.lease_id,
            lease_ttl=convert.duration_to_proto(lease.ttl),
            heartbeat_interval=convert.duration_to_proto(lease.heartbeat_interval),
            lease_expires_at=convert.timestamp_to_proto(lease.endpoint.lease_expires_at),
        )

    async def Heartbeat(  # noqa: N802
        self, request: gw.HeartbeatRequest, context: Context
    ) -> gw.HeartbeatResponse:
        try:
            await self._may_register(caller_of(context), request.domain, "heartbeat for")
            endpoint = await self._registry.heartbeat(
                domain=request.domain,
                lease_id=request.lease_id,
                requested_ttl=request.lease_ttl.ToTimedelta().total_seconds()
                if request.HasField("lease_ttl")
                else None,
            )
        except Exception as exc:
            await abort_for(context, exc)
        return gw.HeartbeatResponse(
            lease_expires_at=convert.timestamp_to_proto(endpoint.lease_expires_at)
        )

    async def DeregisterDomain(  # noqa: N802
        self, request: gw.DeregisterDomainRequest, context: Context
    ) -> gw.DeregisterDomainResponse:
        try:
            caller = await self._may_register(caller_of(context), request.domain, "deregister")
            removed = await self._registry.deregister(
                domain=request.domain, lease_id=request.lease_id or None
            )
            await self._audit.record(
                [
                    AuditEvent(
                        type=EventType.DOMAIN_DEREGISTERED,
                        actor=str(caller),
                        source_domain=caller.domain,
                        target_domain=request.domain,
                        outcome="deregistered",
                        attributes={"lease_id": request.lease_id, "removed": removed},
                    )
                ]
            )
        except Exception as exc:
            await abort_for(context, exc)
        return gw.DeregisterDomainResponse(removed_endpoints=removed)

    async def ListDomains(  # noqa: N802
        self, request: gw.ListDomainsRequest, context: Context
    ) -> gw.ListDomainsResponse:
        try:
            caller = caller_of(context)
            records = self._registry.list_domains()
        except Exception as exc:
            await abort_for(context, exc)
        now = self._clock()
        visible = (self._visible(caller, r) for r in records)
        return gw.ListDomainsResponse(
            domains=[
                convert.domain_to_proto(r, now)
                for r in visible
                if r.capabilities and (request.include_offline or r.live_endpoints(now))
            ]
        )

    async def DescribeDomain(  # noqa: N802
        self, request: gw.DescribeDomainRequest, context: Context
    ) -> gw.DomainInfo:
        try:
            caller = caller_of(context)
            hidden = DomainNotFound(
                f"domain {request.domain!r} is not registered or offers nothing {caller} may invoke"
            )
            try:
                record = self._visible(caller, self._registry.describe(request.domain))
            except DomainNotFound:
                raise hidden from None
            if not record.capabilities:
                raise hidden
        except Exception as exc:
            await abort_for(context, exc)
        return convert.domain_to_proto(record, self._clock())

    # --- policy -----------------------------------------------------------------

    async def _may_register(self, caller: Principal, domain: str, verb: str) -> Principal:
        """`caller` if it may `verb` `domain`; a refusal is recorded before it is raised."""
        if caller.domain != domain:
            decision = Decision(
                allowed=False,
                reason=f"domain {caller.domain!r} may not {verb} domain {domain!r}: "
                "a domain may only register, renew or deregister itself",
                rule="self-only",
            )
        else:
            decision = self._policy.decide(caller, domain, "*", Action.REGISTER)
        if decision.allowed:
            return caller
        await self._audit.record(
            [
                AuditEvent(
                    type=EventType.POLICY_DECISION,
                    actor=str(caller),
                    source_domain=caller.domain,
                    target_domain=domain,
                    decision="deny",
                    rule=decision.rule,
                    policy_version=decision.policy_version,
                    outcome="refused",
                    attributes={"action": str(Action.REGISTER), "operation": verb},
                )
            ]
        )
        raise PolicyDenied(decision.reason)

    def _visible(self, caller: Principal, record: DomainRecord) -> DomainRecord:
        """The record with only the capabilities `caller` may invoke."""
        allowed = tuple(
            c
            for c in record.capabilities
            if self._policy.decide(caller, record.name, c.name, Action.INVOKE).allowed
        )
        if len(allowed) == len(record.capabilities):
            return record
        return dataclasses.replace(record, capabilities=allowed)

    # --- invocation -----------------------------------------------------------

    async def Invoke(  # noqa: N802
        self, request: gw.InvokeRequest, context: Context
    ) -> gw.InvokeResponse:
        invocation: Invocation | None = None
        final: TaskUpdate | None = None
        try:
            invocation = invocation_of(request, context)
            async for update in self._pipeline.run(invocation):
                if update.final:
                    final = update
        except Exception as exc:
            _send_receipts(context, invocation, ())
            await abort_for(
                context, exc, invocation.task.trace_id if invocation and invocation.task else ""
            )
        # The pipeline always ends with a final update or raises.
        assert final is not None
        assert invocation is not None
        task = invocation.require_task()
        _send_receipts(
            context,
            invocation,
            ((metadata.TRACE_ID, task.trace_id), (metadata.TASK_ID, task.task_id)),
        )
        response = gw.InvokeResponse()
        convert.fill_task(response.task, task, final.state, final.message, self._clock())
        if final.output is not None:
            convert.fill_payload(response.output, final.output)
        if invocation.fallback_from is not None:
            response.fallback_for.CopyFrom(convert.target_to_proto(invocation.fallback_from))
            response.fallback_reason = invocation.fallback_reason
        if final.error is not None:
            response.error.CopyFrom(
                pb.TaskError(
                    code=final.error.code,
                    message=final.error.message,
                    retryable=final.error.retryable,
                )
            )
        return response

    async def InvokeStream(  # noqa: N802
        self, request: gw.InvokeRequest, context: Context
    ) -> AsyncIterator[pb.TaskEvent]:
        invocation: Invocation | None = None
        sequence = 0
        try:
            invocation = invocation_of(request, context)
            async for update in self._pipeline.run(invocation):
                sequence += 1
                task = invocation.require_task()
                if sequence == 1:
                    await context.send_initial_metadata(
                        ((metadata.TRACE_ID, task.trace_id), (metadata.TASK_ID, task.task_id))
                    )
                yield convert.update_to_proto(update, task.task_id, sequence)
            _send_receipts(context, invocation, ())
        except Exception as exc:
            _send_receipts(context, invocation, ())
            await abort_for(
                context, exc, invocation.task.trace_id if invocation and invocation.task else ""
            )


def _send_receipts(
    context: Context, invocation: Invocation | None, extra: tuple[tuple[str, str], ...]
) -> None:
    """Trailing metadata: `extra` and one audit receipt per record of the call."""
    receipts = invocation.receipts if invocation is not None else []
    if receipts or extra:
        context.set_trailing_metadata(
            extra
            + tuple(
                (metadata.AUDIT_RECEIPT, metadata.encode_receipt(r.seq, r.leaf_hash))
                for r in receipts
            )
        )


def invocation_of(request: gw.InvokeRequest, context: Context) -> Invocation:
    """The request chain's invocation for an InvokeRequest (also SubmitTask's)."""
    if not request.HasField("target"):
        raise InvalidRequest("target is required (domain and capability name)")
    remaining = context.time_remaining()
    return Invocation(
        caller=caller_of(context, request.agent),
        target=convert.target_from_proto(request.target),
        input=convert.payload_from_proto(request.input)
        if request.HasField("input")
        else _missing_input(),
        context_refs=tuple(ContextRef(r.key, r.version) for r in request.context_refs),
        idempotency_key=request.idempotency_key,
        trace_id=request.trace_id,
        parent_task_id=request.parent_task_id,
        claimed_call_path=call_path_of(context),
        timeout=remaining,
    )


def _missing_input() -> NoReturn:
    raise InvalidRequest("input is required: set json or data")
