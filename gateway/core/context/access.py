"""Who may see and write which context item: the decisions and the records they leave.

A read of item I (owned by domain O, classification C) by principal P is allowed when

1. the shared policy allows `context.read` on object `I.key` of domain O for P, and
2. the context-flow rule allows classification C to flow from O to P's domain
   (`policies/flows.csv`; an item never leaves its domain when O is P's domain), and
3. when the reader is a capability receiving attached context, C is not above the
   highest classification the capability declares it accepts.

Anything else yields a *redacted* view (key, version, classification, owner, no value)
and a `context.redacted` record naming the rule that withheld it. A write needs
`context.write` on the writer's own domain: the writer owns what it creates, and only
the owner changes or deletes an item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.content_hash import ContentHasher
from gateway.core.context.items import ContextItem, ContextView, classification_name
from gateway.core.decision import Action, Decision
from gateway.core.models import Classification, Principal

ACCEPTS_RULE = "capability-accepts"
"""The `rule` of a redaction because the receiving capability does not accept the level."""

DECLARATION_RULE = "capability-declaration"
"""The `rule` of a refused write-back above the capability's declared classification."""


class ContextPolicy(Protocol):
    """The shared policy as the context space uses it (`CasbinPolicy` is one)."""

    def decide(self, principal: Principal, domain: str, obj: str, action: Action) -> Decision:
        """Whether `principal` may do `action` on `obj` of `domain`."""
        ...

    def may_flow(
        self, source_domain: str, target_domain: str, classification: Classification
    ) -> Decision:
        """Whether context of `classification` may flow from one domain to another."""
        ...


class ContextAccess:
    """Decides reads and writes of context items and builds their audit records."""

    def __init__(self, policy: ContextPolicy, hasher: ContentHasher) -> None:
        self._policy = policy
        self._hasher = hasher

    def read(
        self,
        reader: Principal,
        item: ContextItem,
        *,
        accepts: Sequence[Classification] = (),
    ) -> tuple[ContextView, Decision]:
        """What `reader` may see of `item`, and the decision that says so.

        Args:
            reader: Who would see the item (a caller, or the domain a task goes to).
            item: The stored item.
            accepts: Classifications a receiving capability declares it accepts;
                empty when the reader is not a capability or declares none.
        """
        allowed = self._policy.decide(reader, item.owner, item.key, Action.CONTEXT_READ)
        if not allowed.allowed:
            return ContextView(item, redacted=True, reason=allowed.reason), allowed
        flow = self._policy.may_flow(item.owner, reader.domain, item.classification)
        if not flow.allowed:
            return ContextView(item, redacted=True, reason=flow.reason), flow
        if accepts and item.classification > max(accepts):
            refused = Decision(
                allowed=False,
                reason=f"{classification_name(item.classification)} context is above what "
                f"the receiving capability accepts (at most {classification_name(max(accepts))})",
                rule=ACCEPTS_RULE,
                policy_version=flow.policy_version,
            )
            return ContextView(item, redacted=True, reason=refused.reason), refused
        both = Decision(
            allowed=True,
            reason=f"{allowed.reason}; {flow.reason}",
            rule=f"{allowed.rule} + {flow.rule}",
            policy_version=flow.policy_version,
        )
        return ContextView(item), both

    def may_write(self, writer: Principal, key: str) -> Decision:
        """Whether `writer` may write (or delete) `key` in its own domain."""
        return self._policy.decide(writer, writer.domain, key, Action.CONTEXT_WRITE)

    def read_event(
        self,
        reader: Principal,
        view: ContextView,
        decision: Decision,
        *,
        via: str,
        actor: Principal | None = None,
        task_id: str = "",
        parent_task_id: str = "",
        capability: str = "",
    ) -> AuditEvent:
        """The `context.read` or `context.redacted` record of one view.

        Args:
            reader: The principal (or receiving domain) the view was made for.
            view: What it got.
            decision: The decision behind it.
            via: `get`, `list`, `history`, `watch` or `invoke`.
            actor: Who caused the read when not the reader (the caller of an Invoke).
            task_id: The task the read belongs to, if any.
            parent_task_id: That task's parent.
            capability: The receiving capability (Invoke).
        """
        item = view.item
        attributes: dict[str, object] = {"key": item.key, "version": item.version, "via": via}
        if view.redacted:
            attributes["reason"] = view.reason
        elif not item.deleted:
            attributes["content_hash"] = self._hasher.hash(item.value)
        if item.deleted:
            attributes["deleted"] = True
        return AuditEvent(
            type=EventType.CONTEXT_REDACTED if view.redacted else EventType.CONTEXT_READ,
            actor=str(actor or reader),
            source_domain=item.owner,
            target_domain=reader.domain,
            capability=capability,
            trace_id=item.trace_id,
            task_id=task_id,
            parent_task_id=parent_task_id,
            decision="allow" if decision.allowed else "deny",
            rule=decision.rule,
            policy_version=decision.policy_version,
            outcome="redacted" if view.redacted else "read",
            classifications=(classification_name(item.classification),),
            attributes=attributes,
        )

    def write_event(
        self,
        writer: Principal,
        *,
        trace_id: str,
        key: str,
        decision: Decision,
        outcome: str,
        item: ContextItem | None = None,
        classification: Classification | None = None,
        task_id: str = "",
        attributes: dict[str, object] | None = None,
    ) -> AuditEvent:
        """The `context.written` record of a write, delete or refused write.

        Args:
            writer: Who wrote.
            trace_id: The item's trace.
            key: The item's key.
            decision: The policy decision on the write.
            outcome: `written`, `deleted`, `denied`, `stale`, `refused` or `missing`
                (a delete of an item that does not exist).
            item: The version written (None when nothing was).
            classification: The classification asked for, when nothing was written.
            task_id: The task writing back, if any.
            attributes: Further details (expected version, reason, current version).
        """
        details: dict[str, object] = {"key": key, **(attributes or {})}
        level = classification
        if item is not None:
            details["version"] = item.version
            level = item.classification
            if not item.deleted:
                details["content_hash"] = self._hasher.hash(item.value)
        return AuditEvent(
            type=EventType.CONTEXT_WRITTEN,
            actor=str(writer),
            source_domain=writer.domain,
            target_domain=item.owner if item is not None else writer.domain,
            trace_id=trace_id,
            task_id=task_id,
            decision="allow" if decision.allowed else "deny",
            rule=decision.rule,
            policy_version=decision.policy_version,
            outcome=outcome,
            classifications=() if level is None else (classification_name(level),),
            attributes=details,
        )

    def intent_event(
        self,
        writer: Principal,
        *,
        trace_id: str,
        key: str,
        decision: Decision,
        operation: str,
        classification: Classification | None = None,
        task_id: str = "",
        attributes: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """The allowed `context.write` decision, recorded ahead of the write.

        Audit before acting: it commits with the write (or before it, on sinks that
        cannot join a transaction), so the trail always holds who was allowed to
        write what; the `context.written` record of the outcome follows it.
        """
        return AuditEvent(
            type=EventType.POLICY_DECISION,
            actor=str(writer),
            source_domain=writer.domain,
            target_domain=writer.domain,
            trace_id=trace_id,
            task_id=task_id,
            decision="allow" if decision.allowed else "deny",
            rule=decision.rule,
            policy_version=decision.policy_version,
            outcome="allowed" if decision.allowed else "refused",
            classifications=()
            if classification is None
            else (classification_name(classification),),
            attributes={
                "action": str(Action.CONTEXT_WRITE),
                "operation": operation,
                "key": key,
                **(attributes or {}),
            },
        )
