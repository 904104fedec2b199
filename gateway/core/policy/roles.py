"""`DomainRoles`: a pycasbin role manager for roles per domain, built once, then read-only.

pycasbin's default `DomainManager` keeps one `Role` object (with sets of users and
roles pointing at each other) per name and domain, builds each domain's graph
lazily on the first decision that needs it, and adds every unknown name it is asked
about. At 100k role assignments that is over half a million objects in reference
cycles: the garbage collector then spends about 0.2 s on every full pass over the
live policy, and a replaced policy stays in memory until such a pass. Deciding also
mutates it, so it cannot be shared between threads without a lock.

Here the links are plain data: domain -> principal -> tuple of roles, strings only.
Nothing is built on the request path, asking never changes anything, and a replaced
policy is freed by reference counting alone. Semantics are those of the default
manager without pattern matching (a property test compares the two): a principal
has a role in a domain if a chain of at most `max_hierarchy_level - 1` links leads
from it to the role in that domain; every name has itself as a role.
"""

from __future__ import annotations

from collections.abc import Iterable

from casbin.rbac import RoleManager


class DomainRoles(RoleManager):  # type: ignore[misc]  # pycasbin ships no type hints
    """Role links per domain; `freeze()` after loading turns them into tuples."""

    def __init__(self, max_hierarchy_level: int = 10) -> None:
        self.max_hierarchy_level = max_hierarchy_level
        self._links: dict[str, dict[str, list[str] | tuple[str, ...]]] = {}

    def clear(self) -> None:
        """Forgets every link."""
        self._links = {}

    def add_link(self, name1: str, name2: str, *domain: str) -> None:
        """`name1` has role `name2` in the domain."""
        roles = self._links.setdefault(_domain(domain), {}).setdefault(name1, [])
        if name2 not in roles:
            self._links[_domain(domain)][name1] = [*roles, name2]

    def delete_link(self, name1: str, name2: str, *domain: str) -> None:
        """Removes one link (the gateway rebuilds instead; kept for the interface)."""
        users = self._links.get(_domain(domain), {})
        roles = users.get(name1, ())
        if name2 in roles:
            users[name1] = [r for r in roles if r != name2]

    def freeze(self) -> None:
        """Makes every role list a tuple: immutable, and untracked by the collector."""
        for users in self._links.values():
            for name, roles in users.items():
                users[name] = tuple(roles)

    def has_link(self, name1: str, name2: str, *domain: str) -> bool:
        """True if `name1` reaches role `name2` in the domain within the hierarchy limit."""
        if name1 == name2:
            return True
        users = self._links.get(_domain(domain))
        if not users:
            return False
        frontier: Iterable[str] = (name1,)
        seen = {name1}
        for _ in range(self.max_hierarchy_level - 1):
            following: list[str] = []
            for name in frontier:
                for role in users.get(name, ()):
                    if role == name2:
                        return True
                    if role not in seen:
                        seen.add(role)
                        following.append(role)
            if not following:
                return False
            frontier = following
        return False

    def get_roles(self, name: str, *domain: str) -> list[str]:
        """The roles `name` holds directly in the domain."""
        return list(self._links.get(_domain(domain), {}).get(name, ()))

    def get_users(self, name: str, *domain: str) -> list[str]:
        """The principals (and roles) that hold role `name` directly in the domain."""
        return [
            user for user, roles in self._links.get(_domain(domain), {}).items() if name in roles
        ]

    def print_roles(self) -> None:
        """Part of the interface; roles are not logged (there may be 100k)."""


def _domain(domain: tuple[str, ...]) -> str:
    if len(domain) > 1:
        raise ValueError("a role link has at most one domain")
    return domain[0] if domain else ""
