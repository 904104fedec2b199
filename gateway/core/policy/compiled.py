"""One policy version compiled for fast decisions: a pycasbin FastEnforcer and the flow table.

Building is the slow part (about 2 s at 100k rules) and happens off the request
path; a `CompiledPolicy` is never changed afterwards, only replaced (see
`CasbinPolicy.install`). Why it is built the way it is (pycasbin 2.8):

- `FastEnforcer` with `cache_key_order` on the rule's (domain, object) keeps the
  rules in a dict of dicts. Its own `enforce` filters on the request's exact
  (domain, object) and would miss `*` rules; `enforce` below filters on the four
  buckets a request can match, (dom, obj), (dom, *), (*, obj), (*, *), and
  evaluates only those rules. The plain `Enforcer` evaluates every rule (about
  72 ms at 100k); a property test shows both decide the same.
- Roles live in `DomainRoles`, a role manager of plain strings built once (see
  `roles.py`): no pattern matching (pycasbin's default manager with a matching
  function builds its graph in quadratic time), nothing built or added while
  deciding, no reference cycles for the garbage collector to walk.
- pycasbin parses the matcher with `ast.parse` on every `enforce_ex` and interprets
  it per rule; the enforcer here compiles it once to Python bytecode (after checking
  it holds only comparisons, boolean operators and the model's functions).
- The enforcer mutates itself while deciding (the filter above), so every call
  holds `lock`.
- Rules are loaded through a pycasbin `Adapter` into a fresh model and role links
  are built once; `Enforcer.load_policy` would deep-copy the model and log the
  whole policy.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import itertools
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

import casbin
from casbin.model import FastModel
from casbin.model.policy_fast import in_cache
from casbin.persist.adapter import Adapter

from gateway.core.policy.flows import FlowTable
from gateway.core.policy.roles import DomainRoles
from gateway.core.policy.rules import ANY, PolicyRule

CACHE_KEY_ORDER = (1, 2)
"""Positions of (dom, obj) in `p = sub, dom, obj, act`: the index of the fast path."""

_serials = itertools.count(1)


class RuleListAdapter(Adapter):  # type: ignore[misc]  # pycasbin ships no type hints
    """A read-only pycasbin adapter over rules already in memory."""

    def __init__(self, rules: Iterable[PolicyRule]) -> None:
        self._rules = tuple(rules)

    def load_policy(self, model: Any) -> None:
        """Appends every `p` and `g` rule to the model (`flow` rules are not casbin's)."""
        sections = model.model
        for rule in self._rules:
            section = sections.get(rule.ptype[0])
            if section is not None and rule.ptype in section:
                section[rule.ptype].policy.append(list(rule.values))


class _CompiledMatcher:
    """A matcher compiled to Python bytecode, for expressions made only of comparisons,
    `and`/`or`/`not`, string constants, request/policy values and calls of the model's
    functions (`g`, keyMatch, ...). pycasbin interprets the matcher's syntax tree node
    by node with simpleeval for every rule it evaluates; this runs the same expression
    several times faster. Anything else keeps pycasbin's own evaluator.
    """

    _NODES = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.Compare,
        ast.Eq,
        ast.NotEq,
        ast.Name,
        ast.Load,
        ast.Constant,
        ast.Call,
    )

    def __init__(self, code: CodeType, functions: dict[str, Any]) -> None:
        self._code = code
        self._globals = {"__builtins__": {}, **functions}

    @classmethod
    def compile(cls, expr: str, functions: dict[str, Any]) -> _CompiledMatcher | None:
        """The compiled matcher, or None if the expression uses anything else."""
        text = re.sub(r"!(?!=)", "not ", expr.replace("&&", "and").replace("||", "or"))
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            return None
        for node in ast.walk(tree):
            if not isinstance(node, cls._NODES):
                return None
            if isinstance(node, ast.Call) and (
                not isinstance(node.func, ast.Name)
                or node.func.id not in functions
                or node.keywords
            ):
                return None
            if isinstance(node, ast.Constant) and not isinstance(node.value, str | int | float):
                return None
        return cls(compile(tree, "<casbin matcher>", "eval"), functions)

    def eval(self, names: dict[str, Any]) -> Any:
        """The matcher's value for one request and rule (pycasbin's evaluator interface)."""
        # Safe: the tree was checked to hold only the nodes above, with no builtins.
        return eval(self._code, self._globals, names)


class _Enforcer(casbin.FastEnforcer):  # type: ignore[misc]
    """A FastEnforcer that compiles its matcher once instead of parsing it per decision."""

    def __init__(self, model: Any) -> None:
        self._expressions: dict[str, Any] = {}
        super().__init__(model, None, cache_key_order=list(CACHE_KEY_ORDER))

    def _get_expression(self, expr: str, functions: Any = None) -> Any:
        # The functions (g and friends) are bound to this enforcer's role manager,
        # which is never replaced, so the first call's functions serve every call.
        expression = self._expressions.get(expr)
        if expression is None:
            expression = _CompiledMatcher.compile(
                expr, functions or {}
            ) or casbin.FastEnforcer._get_expression(expr, functions)
            self._expressions[expr] = expression
        return expression


@dataclass(eq=False)
class CompiledPolicy:
    """An immutable policy version ready to decide. Thread-safe (calls hold `lock`)."""

    version: int
    rule_count: int
    """How many rules (of every type) this version has."""
    enforcer: Any
    flows: FlowTable
    serial: int = field(default_factory=lambda: next(_serials))
    """Unique per build, so a cache never confuses two builds of one version."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __len__(self) -> int:
        return self.rule_count

    def enforce(self, sub: str, dom: str, obj: str, act: str) -> tuple[bool, list[str]]:
        """Decides one request; returns (allowed, values of the rule that allowed it)."""
        policy = self.enforcer.model.model["p"]["p"].policy
        with self.lock:
            policy._current_filter = self._candidates(policy, dom, obj)
            try:
                allowed, rule = self.enforcer.enforce_ex(sub, dom, obj, act)
            finally:
                policy._current_filter = None
        return bool(allowed), list(rule)

    def matching_rules(self, sub: str, dom: str, obj: str, act: str) -> list[PolicyRule]:
        """Every `p` rule that allows the request, sorted (for explanations, not hot)."""
        policy = self.enforcer.model.model["p"]["p"].policy
        found: list[PolicyRule] = []
        with self.lock:
            try:
                for values in self._candidates(policy, dom, obj):
                    policy._current_filter = {values}
                    if self.enforcer.enforce_ex(sub, dom, obj, act)[0]:
                        found.append(PolicyRule("p", tuple(values)))
            finally:
                policy._current_filter = None
        return sorted(found)

    def roles_of(self, sub: str, dom: str) -> list[str]:
        """Roles `sub` holds directly in `dom` (a `*` domain means federation-wide roles)."""
        with self.lock:
            return sorted(self.enforcer.get_role_manager().get_roles(sub, dom))

    @staticmethod
    def _candidates(policy: Any, dom: str, obj: str) -> set[Sequence[str]]:
        # The rules of the four buckets a request can match; usually one is non-empty.
        cache = policy._cache
        buckets = [
            bucket
            for key in ((dom, obj), (dom, ANY), (ANY, obj), (ANY, ANY))
            if (bucket := in_cache(cache, key))
        ]
        if len(buckets) == 1:
            return buckets[0]  # type: ignore[no-any-return]
        return set().union(*buckets)


def build_enforcer(model_text: str, adapter: Any) -> Any:
    """A fast-path enforcer with the adapter's policy loaded and role links built.

    Args:
        model_text: The content of `policies/model.conf`.
        adapter: A pycasbin adapter; its `load_policy(model)` fills the model.
    """
    model = FastModel(list(CACHE_KEY_ORDER))
    model.load_model_from_text(model_text)
    enforcer = _Enforcer(model)
    roles = DomainRoles()
    enforcer.set_role_manager(roles)
    adapter.load_policy(enforcer.get_model())
    enforcer.build_role_links()
    roles.freeze()
    # The role lists are in `roles` now; as tuples the model's copies are not tracked
    # by the garbage collector (nothing changes them: the policy is rebuilt instead).
    grouping = enforcer.get_model().model["g"]["g"]
    grouping.policy = [tuple(rule) for rule in grouping.policy]
    return enforcer


class _GcPause:
    """Pauses the cyclic garbage collector while policies are built.

    Building allocates about a million long-lived objects; the collections they
    would trigger cost more than the build itself (1.0 s instead of 0.4 s at 100k
    rules). Reference counting still frees everything meanwhile. Concurrent builds
    keep it paused until the last one ends; a collector that was off stays off.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._builds = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._builds == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._builds += 1
        try:
            yield
        finally:
            with self._lock:
                self._builds -= 1
                if self._builds == 0 and self._was_enabled:
                    gc.enable()


paused_gc = _GcPause()
"""`with paused_gc(): ...` builds or loads policies without cyclic GC passes."""


def compile_policy(model_text: str, rules: Iterable[PolicyRule], version: int) -> CompiledPolicy:
    """Compiles rules (any mix of `p`, `g` and `flow`) into a decision-ready policy."""
    kept = tuple(rules)
    with paused_gc():
        return CompiledPolicy(
            version=version,
            rule_count=len(kept),
            enforcer=build_enforcer(model_text, RuleListAdapter(kept)),
            flows=FlowTable(kept, version),
        )
