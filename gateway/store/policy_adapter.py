"""A pycasbin `Adapter` over `SqlPolicyStore`, for any Casbin enforcer.

The gateway itself compiles the store's rules directly (`gateway.core.policy`), but
tools and tests that want a stock `casbin.Enforcer` on the shared policy use this:

    enforcer = casbin.Enforcer("policies/model.conf", SqlPolicyAdapter(store, actor="ops"))

Writes through the adapter (`enforcer.add_policy(...)` with auto-save) are policy
changes like any other: they bump the version and are logged under `actor`.
`flow` rules are kept in the same table; Casbin's loader skips them (no `f` section).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from casbin import persist
from casbin.persist.adapter import Adapter

from gateway.core.clock import utcnow
from gateway.core.policy.rules import PolicyRule, make_rule
from gateway.store.policy_store import SqlPolicyStore


class SqlPolicyAdapter(Adapter):  # type: ignore[misc]  # pycasbin ships no type hints
    """Loads and saves Casbin policy through the gateway's policy store."""

    def __init__(self, store: SqlPolicyStore, *, actor: str = "casbin-adapter") -> None:
        """Args:
        store: The policy store.
        actor: Recorded as who made the changes written through this adapter.
        """
        self.store = store
        self.actor = actor
        self.loaded_version = 0
        """The policy version the last `load_policy` read."""

    def load_policy(self, model: Any) -> None:
        """Loads every stored rule into the model (one snapshot)."""
        policy_set = self.store.load()
        for rule in policy_set.rules:
            persist.load_policy_line(str(rule), model)
        self.loaded_version = policy_set.version

    def save_policy(self, model: Any) -> bool:
        """Replaces the stored `p` and `g` rules with the model's (flow rules stay)."""
        rules = [r for r in self.store.load().rules if r.ptype == "flow"]
        for sec in ("p", "g"):
            for ptype, assertion in model.model.get(sec, {}).items():
                rules.extend(make_rule(ptype, values) for values in assertion.policy)
        self.store.replace(rules, actor=self.actor, now=utcnow())
        return True

    def add_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> bool:
        """Adds one rule."""
        return self.add_policies(sec, ptype, [rule])

    def add_policies(self, sec: str, ptype: str, rules: Sequence[Sequence[str]]) -> bool:
        """Adds rules (one version)."""
        change = self.store.add(_rules(ptype, rules), actor=self.actor, now=utcnow())
        return change.changed

    def remove_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> bool:
        """Removes one rule."""
        return self.remove_policies(sec, ptype, [rule])

    def remove_policies(self, sec: str, ptype: str, rules: Sequence[Sequence[str]]) -> bool:
        """Removes rules (one version)."""
        change = self.store.remove(_rules(ptype, rules), actor=self.actor, now=utcnow())
        return change.changed

    def remove_filtered_policy(
        self, sec: str, ptype: str, field_index: int, *field_values: str
    ) -> bool:
        """Removes the rules of `ptype` whose values from `field_index` on match (empty = any)."""
        doomed = [
            rule
            for rule in self.store.load().rules
            if rule.ptype == ptype
            and all(
                not want
                or (field_index + i < len(rule.values) and rule.values[field_index + i] == want)
                for i, want in enumerate(field_values)
            )
        ]
        if not doomed:
            return False
        return self.store.remove(doomed, actor=self.actor, now=utcnow()).changed


def _rules(ptype: str, rules: Sequence[Sequence[str]]) -> list[PolicyRule]:
    return [make_rule(ptype, values) for values in rules]
