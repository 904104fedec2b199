"""Context-flow rules: which data classification may cross from one domain to another.

A second table beside the RBAC model (pycasbin's FastEnforcer reads only the first
`r/p/g` section, and a flow is a comparison of levels, not a role lookup):

    flow, <from domain or *>, <to domain or *>, <highest classification allowed>

`may_flow(source, target, classification)` allows when some rule covering the pair
allows that classification or a higher one. Deny by default. Context that stays in
its own domain crosses no boundary and is always allowed.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.core.decision import Decision
from gateway.core.models import Classification
from gateway.core.policy.rules import ANY, CLASSIFICATIONS, PolicyRule

SAME_DOMAIN_RULE = "same-domain"
"""The `rule` of a decision about context that does not leave its domain."""

DEFAULT_DENY_RULE = "default-deny"
"""The `rule` of a decision no rule allowed."""


class FlowTable:
    """The flow rules of one policy version, indexed by (from, to) for O(1) checks."""

    def __init__(self, rules: Iterable[PolicyRule], version: int = 0) -> None:
        """Indexes the `flow` rules among `rules` (other types are ignored)."""
        self.version = version
        self._best: dict[tuple[str, str], tuple[Classification, PolicyRule]] = {}
        for rule in rules:
            if rule.ptype != "flow":
                continue
            source, target, name = rule.values
            level = CLASSIFICATIONS[name]
            current = self._best.get((source, target))
            if current is None or level > current[0]:
                self._best[(source, target)] = (level, rule)

    def __len__(self) -> int:
        return len(self._best)

    def may_flow(
        self, source_domain: str, target_domain: str, classification: Classification
    ) -> Decision:
        """Whether context of `classification` owned by `source_domain` may reach `target_domain`.

        Args:
            source_domain: The domain the context comes from (its owner).
            target_domain: The domain that would receive it.
            classification: The item's classification.

        Returns:
            The decision; its `rule` is the flow rule with the highest level that
            covers the pair, `same-domain`, or `default-deny`.
        """
        name = classification.name.lower()
        if source_domain == target_domain:
            return Decision(
                allowed=True,
                reason=f"{name} context stays inside {source_domain}",
                rule=SAME_DOMAIN_RULE,
                policy_version=self.version,
            )
        best: tuple[Classification, PolicyRule] | None = None
        for key in (
            (source_domain, target_domain),
            (source_domain, ANY),
            (ANY, target_domain),
            (ANY, ANY),
        ):
            found = self._best.get(key)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        if best is not None and best[0] >= classification:
            return Decision(
                allowed=True,
                reason=f"{name} context may flow from {source_domain} to {target_domain}",
                rule=str(best[1]),
                policy_version=self.version,
            )
        needs = f"needs flow, {source_domain}, {target_domain}, {name} or higher"
        if best is None:
            reason = (
                f"{name} context may not flow from {source_domain} to {target_domain}: "
                f"no flow rule covers the pair ({needs})"
            )
        else:
            reason = (
                f"{name} context may not flow from {source_domain} to {target_domain}: "
                f"at most {best[0].name.lower()} may ({best[1]}; {needs})"
            )
        return Decision(
            allowed=False, reason=reason, rule=DEFAULT_DENY_RULE, policy_version=self.version
        )
