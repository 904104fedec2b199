"""What the policy core needs from the outside: a versioned rule store and a change signal.

Implemented in `gateway.store` (SQLAlchemy; PostgreSQL LISTEN/NOTIFY). Stores are
synchronous and are called from worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.core.policy.rules import PolicyRule


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every rule of one policy version, as read in one snapshot."""

    version: int
    rules: tuple[PolicyRule, ...]


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One recorded change of the shared policy: who, what, when, and the new version.

    A request that changed nothing (adding rules that exist, removing ones that do
    not) is not recorded: `changed` is False and `version` is the current one.
    """

    version: int
    actor: str
    kind: str
    """`seed`, `add`, `remove`, `import` (merge) or `replace`."""
    added: tuple[PolicyRule, ...]
    removed: tuple[PolicyRule, ...]
    changed_at: datetime | None

    @property
    def changed(self) -> bool:
        """True if rules were added or removed (and the version was bumped)."""
        return bool(self.added or self.removed)


class PolicyStore(Protocol):
    """The shared policy's rules with a monotonically increasing version.

    Every change is one transaction that also bumps the version and appends to the
    change log. Implementations raise `StoreUnavailable` when the database is down.
    """

    def current_version(self) -> int:
        """The version of the stored policy (0 before it was ever seeded)."""
        ...

    def load(self) -> PolicySet:
        """Every rule and the version they make up, from one snapshot."""
        ...

    def add(
        self, rules: Sequence[PolicyRule], *, actor: str, now: datetime, kind: str = "add"
    ) -> PolicyChange:
        """Adds the rules that are missing; `kind` is logged (`add`, or `import` for a merge)."""
        ...

    def remove(self, rules: Sequence[PolicyRule], *, actor: str, now: datetime) -> PolicyChange:
        """Removes the rules that exist."""
        ...

    def replace(self, rules: Sequence[PolicyRule], *, actor: str, now: datetime) -> PolicyChange:
        """Makes the stored rules exactly `rules`."""
        ...

    def seed(
        self, rules: Sequence[PolicyRule], *, actor: str, now: datetime
    ) -> PolicyChange | None:
        """Stores `rules` as version 1 if the store was never seeded; else None."""
        ...

    def changes(self, *, since: int = 0, limit: int = 100) -> list[PolicyChange]:
        """The change log after version `since`, oldest first, at most `limit`."""
        ...


class ChangeListener(Protocol):
    """Tells this process soon after another process changed the policy (best effort)."""

    def start(self, on_change: Callable[[], None]) -> None:
        """Starts listening; `on_change` is called from a background thread."""
        ...

    def stop(self) -> None:
        """Stops listening and waits for the background thread."""
        ...
