"""Parsing and printing policy rules."""

from __future__ import annotations

import pytest

from gateway.core.policy import PolicyRule, format_rules, make_rule, parse_rule, parse_rules
from gateway.errors import InvalidRequest


def test_rules_round_trip_through_text() -> None:
    text = "p, support, risk, score, invoke\ng, cli, risk-client, risk\nflow, *, *, public\n"
    rules = parse_rules(text)
    assert rules == [
        PolicyRule("p", ("support", "risk", "score", "invoke")),
        PolicyRule("g", ("cli", "risk-client", "risk")),
        PolicyRule("flow", ("*", "*", "public")),
    ]
    assert format_rules(rules) == text


def test_comments_blank_lines_and_duplicates_are_skipped() -> None:
    text = "# a comment\n\n  p, a1, risk, score, invoke  \np,a1,risk,score,invoke\n"
    assert parse_rules(text) == [PolicyRule("p", ("a1", "risk", "score", "invoke"))]


def test_domain_of_a_rule_is_who_administers_it() -> None:
    assert parse_rule("p, support, risk, score, invoke").domain == "risk"
    assert parse_rule("g, cli, risk-client, *").domain == "*"
    assert parse_rule("flow, support, risk, internal").domain == "support"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x, a, b", "unknown rule type 'x'"),
        ("p, a, b, c", "has 4 values, got 3"),
        ("p, a, risk, score, fly", "unknown action 'fly'"),
        ("p, a, Risk, score, invoke", "invalid domain 'Risk'"),
        ("p, a b, risk, score, invoke", "invalid value 'a b'"),
        ("p, , risk, score, invoke", "invalid value ''"),
        ("g, a, role, NOPE", "invalid domain 'NOPE'"),
        ("flow, a1, b1, secret", "unknown classification 'secret'"),
        ("flow, a1, B!, public", "invalid value 'B!'"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(line: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_rule(line)


def test_errors_name_file_and_line() -> None:
    with pytest.raises(InvalidRequest, match=r"^policy.csv:3: unknown action"):
        parse_rules("# x\np, a1, b1, c, invoke\np, a1, b1, c, jump\n", source="policy.csv")


def test_make_rule_strips_values() -> None:
    assert make_rule("g", [" a ", "b", " * "]) == PolicyRule("g", ("a", "b", "*"))
