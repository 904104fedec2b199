"""Administration of the shared policy: list, add, remove, import, export, check, history.

Every operation is authorized by the policy itself: the caller needs `policy.admin`
on the domain a rule is about (`PolicyRule.domain`; `*` means federation-wide,
which only a federation-wide admin has). Whole-policy operations (export, replace,
listing everything, the change log) need `policy.admin` on `*`. Anyone may check
or explain a request whose subject is themselves.

Each change is one store transaction that bumps the version and records who made
it; this process then refreshes before answering, so the caller's next request
on this replica already sees the change (other replicas within about a second).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from gateway.core.clock import Clock, utcnow
from gateway.core.decision import Action
from gateway.core.models import Principal
from gateway.core.policy.casbin_policy import CasbinPolicy, Explanation
from gateway.core.policy.ports import PolicyChange, PolicySet, PolicyStore
from gateway.core.policy.rules import ANY, PolicyRule
from gateway.core.policy.sync import PolicySync
from gateway.errors import InvalidRequest, PolicyDenied


class PolicyAdministration:
    """The policy-admin use cases, independent of the wire."""

    def __init__(
        self,
        policy: CasbinPolicy,
        store: PolicyStore,
        sync: PolicySync,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self.policy = policy
        self.store = store
        self.sync = sync
        self._clock = clock

    # --- reads ------------------------------------------------------------------

    async def list_rules(
        self, caller: Principal, *, domain: str = "", ptype: str = ""
    ) -> PolicySet:
        """The stored rules, optionally only those about `domain` and of type `ptype`.

        An empty `domain` lists every rule (needs `policy.admin` on `*`).
        """
        self.authorize(caller, domain or ANY)
        policy_set = await asyncio.to_thread(self.store.load)
        rules = tuple(
            r
            for r in policy_set.rules
            if (not domain or r.domain == domain) and (not ptype or r.ptype == ptype)
        )
        return PolicySet(policy_set.version, rules)

    async def export(self, caller: Principal) -> PolicySet:
        """Every stored rule (needs `policy.admin` on `*`)."""
        return await self.list_rules(caller)

    async def changes(
        self, caller: Principal, *, since: int = 0, limit: int = 100
    ) -> list[PolicyChange]:
        """The change log after version `since` (needs `policy.admin` on `*`)."""
        self.authorize(caller, ANY)
        if limit <= 0:
            raise InvalidRequest("limit must be positive")
        return await asyncio.to_thread(self.store.changes, since=since, limit=min(limit, 1000))

    def check(
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
            self.authorize(caller, domain)
        if explain:
            return self.policy.explain(subject, domain, obj, action)
        decision = self.policy.decide(subject, domain, obj, action)
        return Explanation(decision, (), (), ())

    # --- changes ----------------------------------------------------------------

    async def add(self, caller: Principal, rules: Sequence[PolicyRule]) -> PolicyChange:
        """Adds rules (needs `policy.admin` on each rule's domain)."""
        self._authorize_rules(caller, rules)
        return await self._apply(lambda now: self.store.add(rules, actor=str(caller), now=now))

    async def remove(self, caller: Principal, rules: Sequence[PolicyRule]) -> PolicyChange:
        """Removes rules (needs `policy.admin` on each rule's domain)."""
        self._authorize_rules(caller, rules)
        return await self._apply(lambda now: self.store.remove(rules, actor=str(caller), now=now))

    async def import_rules(
        self, caller: Principal, rules: Sequence[PolicyRule], *, replace: bool
    ) -> PolicyChange:
        """Imports a policy file: merge (add what is missing) or replace everything.

        Merging needs `policy.admin` on each rule's domain; replacing, on `*`.
        """
        if replace:
            self.authorize(caller, ANY)
            return await self._apply(
                lambda now: self.store.replace(rules, actor=str(caller), now=now)
            )
        self._authorize_rules(caller, rules)
        return await self._apply(
            lambda now: self.store.add(rules, actor=str(caller), now=now, kind="import")
        )

    # --- helpers ----------------------------------------------------------------

    def authorize(self, caller: Principal, domain: str) -> None:
        """Raises `PolicyDenied` unless `caller` holds `policy.admin` on `domain`."""
        decision = self.policy.decide(caller, domain, ANY, Action.POLICY_ADMIN)
        if not decision.allowed:
            raise PolicyDenied(decision.reason)

    def _authorize_rules(self, caller: Principal, rules: Sequence[PolicyRule]) -> None:
        if not rules:
            raise InvalidRequest("no rules given")
        for domain in dict.fromkeys(r.domain for r in rules):
            self.authorize(caller, domain)

    async def _apply(self, work: Callable[[datetime], PolicyChange]) -> PolicyChange:
        now = self._clock()
        change = await asyncio.to_thread(work, now)
        if change.changed:
            await self.sync.refresh()
        return change
