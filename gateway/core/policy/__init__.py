"""The shared Casbin policy: rules, compiled decisions, context flows, administration.

- `rules`: PolicyRule and the CSV lines of policies/
- `compiled`: one version compiled for fast decisions (pycasbin FastEnforcer)
- `casbin_policy`: CasbinPolicy, the PolicyDecider: cache, explain, atomic reload
- `flows`: context-flow rules, may_flow(source, target, classification)
- `decision_cache`: the bounded LRU of decisions
"""

from gateway.core.policy.casbin_policy import CasbinPolicy, Explanation, principal_of
from gateway.core.policy.compiled import CompiledPolicy, compile_policy
from gateway.core.policy.flows import FlowTable
from gateway.core.policy.rules import PolicyRule, format_rules, make_rule, parse_rule, parse_rules

__all__ = [
    "CasbinPolicy",
    "CompiledPolicy",
    "Explanation",
    "FlowTable",
    "PolicyRule",
    "compile_policy",
    "format_rules",
    "make_rule",
    "parse_rule",
    "parse_rules",
    "principal_of",
]
