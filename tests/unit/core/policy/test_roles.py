"""DomainRoles answers as pycasbin's default domain role manager does (without patterns)."""

from __future__ import annotations

import pytest
from casbin.rbac.default_role_manager import DomainManager

from gateway.core.policy.roles import DomainRoles


def _both(links: list[tuple[str, str, str]]) -> tuple[DomainRoles, DomainManager]:
    ours, theirs = DomainRoles(), DomainManager(10)
    for link in links:
        ours.add_link(*link)
        theirs.add_link(*link)
    ours.freeze()
    return ours, theirs


def test_hierarchy_depth_limit_matches_the_default_manager() -> None:
    chain = [(f"r{i}", f"r{i + 1}", "d1") for i in range(12)]
    ours, theirs = _both(chain)
    for target in range(13):
        assert ours.has_link("r0", f"r{target}", "d1") == theirs.has_link(
            "r0", f"r{target}", "d1"
        ), target
    assert ours.has_link("r0", "r9", "d1")
    assert not ours.has_link("r0", "r10", "d1")


def test_cycles_domains_and_self() -> None:
    ours, theirs = _both([("a1", "b1", "d1"), ("b1", "a1", "d1"), ("a1", "c1", "d2")])
    for name1, name2, domain in [
        ("a1", "b1", "d1"),
        ("b1", "a1", "d1"),
        ("a1", "c1", "d1"),
        ("a1", "c1", "d2"),
        ("x1", "x1", "d9"),
        ("x1", "a1", "d1"),
    ]:
        assert ours.has_link(name1, name2, domain) == theirs.has_link(name1, name2, domain)


def test_roles_users_and_changes() -> None:
    roles = DomainRoles()
    roles.add_link("a1", "readers", "d1")
    roles.add_link("a1", "readers", "d1")
    roles.add_link("a1", "writers", "d1")
    roles.add_link("b1", "readers", "d1")
    assert roles.get_roles("a1", "d1") == ["readers", "writers"]
    assert roles.get_users("readers", "d1") == ["a1", "b1"]
    roles.delete_link("a1", "writers", "d1")
    assert roles.get_roles("a1", "d1") == ["readers"]
    assert roles.get_roles("a1", "d2") == []
    roles.clear()
    assert not roles.has_link("a1", "readers", "d1")


def test_asking_never_adds_names() -> None:
    roles = DomainRoles()
    roles.add_link("a1", "readers", "d1")
    roles.freeze()
    roles.has_link("stranger", "readers", "d1")
    roles.get_roles("stranger", "d1")
    assert roles.get_users("readers", "d1") == ["a1"]


def test_one_domain_at_most() -> None:
    with pytest.raises(ValueError, match="at most one domain"):
        DomainRoles().add_link("a1", "b1", "d1", "d2")
