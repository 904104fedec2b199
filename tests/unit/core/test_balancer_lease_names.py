from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from gateway.core.balancer import Balancer
from gateway.core.lease import LeasePolicy
from gateway.core.names import check_agent, check_name, parse_capability_ref
from gateway.errors import InvalidRequest


def test_balancer_prefers_the_endpoint_with_fewest_calls_in_flight() -> None:
    balancer = Balancer()
    with balancer.track("a:1"), balancer.track("a:1"), balancer.track("b:1"):
        assert balancer.pick(["a:1", "b:1", "c:1"]) == "c:1"
        with balancer.track("c:1"):
            assert balancer.pick(["a:1", "b:1", "c:1"]) in {"b:1", "c:1"}
    assert balancer.in_flight("a:1") == 0


def test_balancer_spreads_idle_load_across_replicas() -> None:
    balancer = Balancer()
    picks = Counter(balancer.pick(["a:1", "b:1", "c:1"]) for _ in range(300))
    assert set(picks) == {"a:1", "b:1", "c:1"}
    assert min(picks.values()) >= 90


def test_lease_grant_clamps_and_defaults() -> None:
    policy = LeasePolicy(default_ttl=15, min_ttl=2, max_ttl=60)
    assert policy.grant(None) == timedelta(seconds=15)
    assert policy.grant(0.1) == timedelta(seconds=2)
    assert policy.grant(1e6) == timedelta(seconds=60)
    assert LeasePolicy.heartbeat_interval(timedelta(seconds=15)) == timedelta(seconds=5)


@pytest.mark.parametrize("name", ["ab", "risk", "a-b-c", "x" + "1" * 62])
def test_valid_names(name: str) -> None:
    assert check_name("domain", name) == name


@pytest.mark.parametrize("name", ["", "a", "Risk", "1abc", "ab_c", "x" * 64, "a/b", "ab "])
def test_invalid_names_are_rejected_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidRequest, match=r"\[a-z\]"):
        check_name("domain", name)


def test_agent_names() -> None:
    assert check_agent("") == ""
    assert check_agent("agent/reconciler") == "agent/reconciler"
    with pytest.raises(InvalidRequest):
        check_agent("finance/agent/reconciler")


def test_capability_reference_parsing() -> None:
    assert parse_capability_ref("risk/score") == ("risk", "score", "")
    assert parse_capability_ref("risk/score@1.2.0") == ("risk", "score", "1.2.0")
    with pytest.raises(InvalidRequest, match="DOMAIN/CAPABILITY"):
        parse_capability_ref("risk")
    with pytest.raises(InvalidRequest):
        parse_capability_ref("Risk/score")
