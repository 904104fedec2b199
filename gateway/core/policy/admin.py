"""Administration of the shared policy: list, add, remove, import, export, check, history.

Every operation is authorized by the policy itself: the caller needs `policy.admin`
on the domain a rule is about (`PolicyRule.domain`; `*` means federation-wide,
which only a federation-wide admin has). Whole-policy operations (export, replace,
listing everything, the change log) need `policy.admin` on `*`. Anyone may check
or explain a request whose subject is themselves.

Each change is one store transaction that bumps the version and records who made
it; this process then refreshes before answering, so the caller's next request
on this replica already sees the change (other replicas within about a second).

With an audit sink, every admin decision is recorded (`policy.decision`, allowed
or refused) and every change too (`policy.changed`: who, the new version, the
rules added and removed), before the caller hears the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.clock import Clock, utcnow
from gateway.core.decision import Action, Decision
from gateway.core.models import Principal
from gateway.core.policy.casbin_policy import CasbinPolicy, Explanation
from gateway.core.policy.ports import PolicyChange, PolicySet, PolicyStore
from gateway.core.policy.rules import ANY, PolicyRule
from gateway.core.policy.sync import PolicySync
from gateway.core.ports import AuditSink
from gateway.errors import InvalidRequest, PolicyDenied

AUDITED_RULES = 100
"""Rules of one change named in its audit record; the change log holds all of them."""


class PolicyAdministration:
    """The policy-admin use cases, independent of the wire."""

    def __init__(
        self,
        policy: CasbinPolicy,
        store: PolicyStore,
        sync: PolicySync,
        *,
        audit: AuditSink | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.policy = policy
        self.store = store
        self.sync = sync
        self.audit = audit
        """Where decisions and changes are recorded (the composition root sets it)."""
        self._clock = clock

    # --- reads ------------------------------------------------------------------

    async def list_rules(
        self, caller: Principal, *, domain: str = "", ptype: str = ""
    ) -> PolicySet:
        """The stored rules, optionally only those about `domain` and of type `ptype`.

        An empty `domain` lists every rule (needs `policy.admin` on `*`).
        """
        await self.authorize(caller, domain or ANY, "list")
        policy_set = await asyncio.to_thread(self.store.load)
        rules = tuple(
            r
            for r in policy_set.rules
            if (not domain or r.domain == domain) and (not ptype or r.ptype == ptype)
        )
        return PolicySet(policy_set.version, rules)

    async def export(self, caller: Principal) -> PolicySet:
        """Every stored rule (needs `policy.admin` on `*`)."""
        await self.authorize(caller, ANY, "export")
        return await asyncio.to_thread(self.store.load)

    async def changes(
        self, caller: Principal, *, since: int = 0, limit: int = 100
    ) -> list[PolicyChange]:
        """The change log after version `since` (needs `policy.admin` on `*`)."""
        if limit <= 0:
            raise InvalidRequest("limit must be positive")
        await self.authorize(caller, ANY, "changes")
        return await asyncio.to_thread(self.store.changes, since=since, limit=min(limit, 1000))

    async def check(
        self,
        caller: Principal,
        subject: Principal,
        domain: str,
        obj: str,
        action: Action,
        *,
        explain: bool = False,
    ) -> Explanation:
        """Decides a request with the live policy; with `explain`, also why (uncached).

        Needs `policy.admin` on `domain` unless `subject` is the caller's own domain
        or one of its agents.
        """
        if subject.domain != caller.domain:
            await self.authorize(caller, domain, "explain" if explain else "check")
        if explain:
            return self.policy.explain(subject, domain, obj, action)
        decision = self.policy.decide(subject, domain, obj, action)
        return Explanation(decision, (), (), ())

    # --- changes ----------------------------------------------------------------

    async def add(self, caller: Principal, rules: Sequence[PolicyRule]) -> PolicyChange:
        """Adds rules (needs `policy.admin` on each rule's domain)."""
        decision = await self._authorize_rules(caller, rules, "add")
        return await self._apply(
            caller, decision, lambda now: self.store.add(rules, actor=str(caller), now=now)
        )

    async def remove(self, caller: Principal, rules: Sequence[PolicyRule]) -> PolicyChange:
        """Removes rules (needs `policy.admin` on each rule's domain)."""
        decision = await self._authorize_rules(caller, rules, "remove")
        return await self._apply(
            caller, decision, lambda now: self.store.remove(rules, actor=str(caller), now=now)
        )

    async def import_rules(
        self, caller: Principal, rules: Sequence[PolicyRule], *, replace: bool
    ) -> PolicyChange:
        """Imports a policy file: merge (add what is missing) or replace everything.

        Merging needs `policy.admin` on each rule's domain; replacing, on `*`.
        """
        if replace:
            decision = await self.authorize(caller, ANY, "replace")
            return await self._apply(
                caller, decision, lambda now: self.store.replace(rules, actor=str(caller), now=now)
            )
        decision = await self._authorize_rules(caller, rules, "import")
        return await self._apply(
            caller,
            decision,
            lambda now: self.store.add(rules, actor=str(caller), now=now, kind="import"),
        )

    # --- helpers ----------------------------------------------------------------

    async def authorize(self, caller: Principal, domain: str, operation: str) -> Decision:
        """The decision that `caller` holds `policy.admin` on `domain` (recorded).

        Raises:
            PolicyDenied: It does not; the reason names the missing permission.
        """
        decision = self.policy.decide(caller, domain, ANY, Action.POLICY_ADMIN)
        await self._record(
            EventType.POLICY_DECISION,
            caller,
            decision,
            target_domain=domain,
            outcome="allowed" if decision.allowed else "refused",
            attributes={"operation": operation, "action": Action.POLICY_ADMIN.value},
        )
        if not decision.allowed:
            raise PolicyDenied(decision.reason)
        return decision

    async def _authorize_rules(
        self, caller: Principal, rules: Sequence[PolicyRule], operation: str
    ) -> Decision:
        if not rules:
            raise InvalidRequest("no rules given")
        decision: Decision | None = None
        for domain in dict.fromkeys(r.domain for r in rules):
            decision = await self.authorize(caller, domain, operation)
        assert decision is not None
        return decision

    async def _apply(
        self,
        caller: Principal,
        decision: Decision,
        work: Callable[[datetime], PolicyChange],
    ) -> PolicyChange:
        change = await asyncio.to_thread(work, self._clock())
        if not change.changed:
            return change
        await self.sync.refresh()
        domains = {r.domain for r in (*change.added, *change.removed)}
        await self._record(
            EventType.POLICY_CHANGED,
            caller,
            decision,
            target_domain=domains.pop() if len(domains) == 1 else ANY,
            outcome=change.kind,
            policy_version=change.version,
            attributes={
                "added": [str(r) for r in change.added[:AUDITED_RULES]],
                "removed": [str(r) for r in change.removed[:AUDITED_RULES]],
                "added_count": len(change.added),
                "removed_count": len(change.removed),
            },
        )
        return change

    async def _record(
        self,
        kind: EventType,
        caller: Principal,
        decision: Decision,
        *,
        target_domain: str,
        outcome: str,
        attributes: dict[str, object],
        policy_version: int | None = None,
    ) -> None:
        if self.audit is None:
            return
        await self.audit.record(
            [
                AuditEvent(
                    type=kind,
                    actor=str(caller),
                    source_domain=caller.domain,
                    target_domain=target_domain,
                    decision="allow" if decision.allowed else "deny",
                    rule=decision.rule,
                    policy_version=decision.policy_version
                    if policy_version is None
                    else policy_version,
                    outcome=outcome,
                    attributes=attributes,
                )
            ]
        )
