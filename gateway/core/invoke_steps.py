"""The steps of the request chain. Each does one thing before routing and may act after.

The chain is built once from an explicit list (see `gateway.server`):
audit(outcome) -> quota -> idempotency -> resolve -> call chain -> policy -> validate
-> context (`gateway.core.context.invoke_step`) -> audit(request), then the router.
A step's `after` runs only if its `before` completed, in reverse order, so the outcome
is audited last and also for refused calls.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Protocol

from gateway.core import call_chain
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.clock import Clock, utcnow
from gateway.core.decision import Action
from gateway.core.invocation import Invocation, Outcome
from gateway.core.ports import AuditSink, PolicyDecider
from gateway.core.quota import QuotaBook
from gateway.core.registry import Registry
from gateway.core.router import Router
from gateway.core.schema import InputValidator
from gateway.core.task import TaskInfo
from gateway.core.task_table import TaskTable
from gateway.errors import CapabilityNotFound, DomainNotFound, InvalidRequest, PolicyDenied


class InvokeStep(Protocol):
    """One link of the request chain."""

    per_target: bool
    """True if `before` must run again when a fallback capability takes over."""

    async def before(self, invocation: Invocation) -> None:
        """Checks or enriches the invocation; raises a `GatewayError` to refuse it."""
        ...

    async def after(self, invocation: Invocation, outcome: Outcome) -> None:
        """Acts on the outcome (only if `before` completed)."""
        ...


class _NoAfter:
    per_target = True

    async def after(self, invocation: Invocation, outcome: Outcome) -> None:
        return None


class QuotaStep(_NoAfter):
    """Takes a token for the caller (and the caller/target pair); RESOURCE_EXHAUSTED if none."""

    per_target = False  # a fallback is the gateway's doing, not a second call to pay for

    def __init__(self, quotas: QuotaBook) -> None:
        self._quotas = quotas

    async def before(self, invocation: Invocation) -> None:
        self._quotas.acquire(invocation.caller.domain, invocation.target.domain)


class ResolveStep(_NoAfter):
    """Resolves `domain/capability` in the registry (NOT_FOUND when unknown).

    The NOT_FOUND message lists only what the caller may invoke, and a domain the
    caller may invoke nothing of reads as unknown: the catalog is not shown to callers
    the policy would refuse (the same rule as ListDomains/DescribeDomain).
    """

    def __init__(self, registry: Registry, decider: PolicyDecider) -> None:
        self._registry = registry
        self._decider = decider

    async def before(self, invocation: Invocation) -> None:
        target = invocation.target
        try:
            _, invocation.capability = self._registry.resolve(target)
        except CapabilityNotFound:
            record = self._registry.describe(target.domain)
            visible = sorted(
                f"{c.name}@{c.version}"
                for c in record.capabilities
                if self._decider.decide(
                    invocation.caller, target.domain, c.name, Action.INVOKE
                ).allowed
            )
            if not visible:
                raise DomainNotFound(f"domain {target.domain!r} is not registered") from None
            raise CapabilityNotFound(
                f"domain {target.domain!r} has no capability {target.name!r}"
                + (f" version {target.version!r}" if target.version else "")
                + f" (offers: {', '.join(visible)})"
            ) from None


class ValidateStep(_NoAfter):
    """Validates the input against the capability's JSON Schema.

    Runs after the policy step, so schema details only reach callers who may invoke.
    """

    def __init__(self, validator: InputValidator) -> None:
        self._validator = validator

    async def before(self, invocation: Invocation) -> None:
        capability = invocation.require_capability()
        payload = invocation.input
        if payload.json is None:
            if capability.input_schema:
                raise InvalidRequest(
                    f"{invocation.target} takes JSON input; got {payload.content_type!r}"
                )
            return
        self._validator.validate(invocation.target.domain, capability, payload.json)


class CallChainStep:
    """Creates the task: ids, trace, depth and call path; refuses cycles and deep nesting.

    Run again for a fallback, it keeps the task's id and deadline and re-places the task
    under its new target (so cycles through the fallback are refused too).
    """

    per_target = True

    def __init__(
        self, tasks: TaskTable, router: Router, *, max_depth: int, clock: Clock = utcnow
    ) -> None:
        self._tasks = tasks
        self._router = router
        self._max_depth = max_depth
        self._clock = clock

    async def before(self, invocation: Invocation) -> None:
        parent = self._tasks.get(invocation.parent_task_id) if invocation.parent_task_id else None
        place = call_chain.position(
            caller=invocation.caller,
            target=invocation.target,
            trace_id=invocation.trace_id,
            parent=parent,
            parent_task_id=invocation.parent_task_id,
            claimed_path=invocation.claimed_call_path,
            max_depth=self._max_depth,
        )
        capability = invocation.require_capability()
        previous = invocation.task
        target = invocation.target
        if target.name != capability.name or target.version != capability.version:
            # The task names the version that runs (the caller may have named none).
            target = target.__class__(target.domain, capability.name, capability.version)
        task = TaskInfo(
            task_id=previous.task_id if previous else secrets.token_hex(16),
            trace_id=place.trace_id,
            caller=invocation.caller,
            target=target,
            parent_task_id=invocation.parent_task_id,
            deadline=previous.deadline
            if previous
            else self._clock() + timedelta(seconds=self._router.timeout_for(invocation)),
            idempotency_key=invocation.idempotency_key,
            context_refs=invocation.context_refs,
            depth=place.depth,
            call_path=place.call_path,
            detached=invocation.detached,
        )
        invocation.task = task
        self._tasks.add(task)

    async def after(self, invocation: Invocation, outcome: Outcome) -> None:
        self._tasks.remove(invocation.require_task().task_id)


class PolicyStep(_NoAfter):
    """Asks the policy whether the caller may invoke the target capability."""

    def __init__(self, decider: PolicyDecider) -> None:
        self._decider = decider

    async def before(self, invocation: Invocation) -> None:
        target = invocation.target
        decision = self._decider.decide(
            invocation.caller, target.domain, target.name, Action.INVOKE
        )
        invocation.decision = decision
        if not decision.allowed:
            raise PolicyDenied(decision.reason)


class AuditRequestStep(_NoAfter):
    """Records the request and its decision before anything is forwarded."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    async def before(self, invocation: Invocation) -> None:
        receipts = await self._sink.record(
            [_event(invocation, EventType.TASK_REQUESTED), *invocation.context_events]
        )
        invocation.receipts.extend(receipts)


class AuditOutcomeStep:
    """Records how the call ended (completed, failed, refused) before the caller hears it."""

    per_target = False

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    async def before(self, invocation: Invocation) -> None:
        return None

    async def after(self, invocation: Invocation, outcome: Outcome) -> None:
        event = _event(invocation, EventType.TASK_FINISHED, outcome)
        invocation.receipts.extend(await self._sink.record([event]))


def _event(invocation: Invocation, kind: EventType, outcome: Outcome | None = None) -> AuditEvent:
    task = invocation.task
    decision = invocation.decision
    attributes: dict[str, object] = {}
    if outcome is not None and outcome.error is not None:
        attributes["error"] = outcome.error.message
    if task is not None:
        attributes["depth"] = task.depth
        attributes["parent_task_id"] = task.parent_task_id
    if invocation.replayed:
        attributes["replayed"] = True
    if invocation.fallback_from is not None:
        attributes["fallback_for"] = str(invocation.fallback_from)
        attributes["fallback_reason"] = invocation.fallback_reason
    if invocation.endpoints:
        attributes["endpoints"] = list(invocation.endpoints)  # where it was routed
    context = task.context if task is not None else ()
    if context:
        # What crossed with the task (hashes are in the context.read records beside it).
        attributes["context"] = [
            {
                "key": v.item.key,
                "version": v.item.version,
                "owner": v.item.owner,
                "classification": v.item.classification.name.lower(),
                "redacted": v.redacted,
            }
            for v in context
        ]
    return AuditEvent(
        type=kind,
        actor=str(invocation.caller),
        source_domain=invocation.caller.domain,
        target_domain=invocation.target.domain,
        capability=invocation.target.name,
        trace_id=task.trace_id if task else invocation.trace_id,
        task_id=task.task_id if task else "",
        parent_task_id=task.parent_task_id if task else invocation.parent_task_id,
        decision=("allow" if decision.allowed else "deny") if decision else "",
        rule=decision.rule if decision else "",
        policy_version=decision.policy_version if decision else 0,
        outcome=outcome.label if outcome else "",
        duration_us=outcome.duration_us if outcome else 0,
        attributes=attributes,
        classifications=tuple(
            sorted({v.item.classification.name.lower() for v in context if not v.redacted})
        ),
    )
