"""Policy rules as data, and the CSV lines of `policies/` they are written in.

    p, <principal or role>, <target domain or *>, <object or *>, <action>
    g, <principal>, <role>, <domain the role holds in, or *>
    flow, <from domain or *>, <to domain or *>, <highest classification>

Blank lines and lines starting with `#` are comments. Values are plain tokens
(no commas, quotes or spaces), so a rule prints back to the line it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.core.decision import Action
from gateway.core.models import Classification
from gateway.core.names import NAME_PATTERN
from gateway.errors import InvalidRequest

ANY = "*"
"""Wildcard for a rule's domain or object: matches every value."""

ARITY = {"p": 4, "g": 3, "flow": 3}
"""How many values each rule type has after its type."""

ACTIONS = frozenset(a.value for a in Action)
CLASSIFICATIONS = {c.name.lower(): c for c in Classification}
"""Classification names as written in flow rules, lowest first."""

_TOKEN = re.compile(r"[A-Za-z0-9_.:@/*-]{1,200}")


@dataclass(frozen=True, slots=True, order=True)
class PolicyRule:
    """One line of the shared policy: its type (`p`, `g`, `flow`) and its values."""

    ptype: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return ", ".join((self.ptype, *self.values))

    @property
    def domain(self) -> str:
        """The domain the rule is about: who administers it (`*` = federation-wide).

        The target domain of a `p` rule, the domain a `g` role holds in, and the
        source domain of a `flow` rule (the data's owner decides where it may go).
        """
        if self.ptype == "p":
            return self.values[1]
        if self.ptype == "g":
            return self.values[2]
        return self.values[0]


def make_rule(ptype: str, values: Iterable[str]) -> PolicyRule:
    """A validated rule.

    Args:
        ptype: `p`, `g` or `flow`.
        values: The rule's values after the type.

    Returns:
        The rule.

    Raises:
        InvalidRequest: Unknown type, wrong number of values, or a value that is
            not a valid token, domain, action or classification.
    """
    vals = tuple(v.strip() for v in values)
    arity = ARITY.get(ptype)
    if arity is None:
        raise InvalidRequest(f"unknown rule type {ptype!r}: expected one of p, g, flow")
    if len(vals) != arity:
        raise InvalidRequest(f"a {ptype!r} rule has {arity} values, got {len(vals)}: {vals}")
    for value in vals:
        if not _TOKEN.fullmatch(value):
            raise InvalidRequest(
                f"invalid value {value!r} in {ptype} rule: use letters, digits and _.:@/*-"
            )
    rule = PolicyRule(ptype, vals)
    _check_domain(rule.domain, rule)
    if ptype == "p":
        if vals[3] not in ACTIONS:
            expected = ", ".join(sorted(ACTIONS))
            raise InvalidRequest(
                f"unknown action {vals[3]!r} in {rule}: expected one of {expected}"
            )
    elif ptype == "flow":
        _check_domain(vals[1], rule)
        if vals[2] not in CLASSIFICATIONS:
            raise InvalidRequest(
                f"unknown classification {vals[2]!r} in {rule}: "
                f"expected one of {', '.join(CLASSIFICATIONS)}"
            )
    return rule


def parse_rule(line: str) -> PolicyRule:
    """Parses one line such as `p, support, risk, score, invoke`.

    Raises:
        InvalidRequest: The line is not a valid rule.
    """
    ptype, *values = (part.strip() for part in line.split(","))
    return make_rule(ptype, values)


def parse_rules(text: str, source: str = "policy") -> list[PolicyRule]:
    """Parses a policy file's text: one rule per line, `#` comments, blank lines.

    Duplicate lines are kept once, in first-seen order.

    Args:
        text: The file's content.
        source: Names the file in error messages.

    Raises:
        InvalidRequest: A line is not a valid rule; the message names file and line.
    """
    rules: dict[PolicyRule, None] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rules.setdefault(parse_rule(line), None)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{source}:{number}: {exc.message}") from None
    return list(rules)


def format_rules(rules: Iterable[PolicyRule]) -> str:
    """Rules as policy-file text, one per line (what `parse_rules` reads back)."""
    return "".join(f"{rule}\n" for rule in rules)


def _check_domain(value: str, rule: PolicyRule) -> None:
    if value != ANY and not NAME_PATTERN.fullmatch(value):
        raise InvalidRequest(f"invalid domain {value!r} in {rule}: a domain name or *")
