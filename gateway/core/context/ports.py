"""What the context core needs from the outside: a versioned item store.

Implemented in `gateway.store.context_store` (SQLAlchemy). Synchronous; the core
calls it from worker threads, never on the event loop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from gateway.core.audited_write import Transaction
from gateway.core.context.items import ContextItem
from gateway.core.models import Classification


class ContextStore(Protocol):
    """Context items with per-key versions and a per-trace change counter.

    Every method is one transaction. Implementations raise `StoreUnavailable`
    when the database is down and `VersionConflict` when a write's expected
    version is not the current one (of two writers racing from the same version,
    exactly one wins, also across gateway replicas) and `PolicyDenied` when an
    existing item is owned by another domain: only its owner writes or deletes it.
    """

    def put(
        self,
        *,
        trace_id: str,
        key: str,
        value: Any,
        classification: Classification,
        owner: str,
        writer: str,
        expected_version: int | None,
        expires_at: datetime | None,
        now: datetime,
        within: Transaction | None = None,
    ) -> ContextItem:
        """Writes the next version of an item (version 1 when it does not exist).

        `expected_version` None writes over any version; 0 only creates. An item
        that exists must be owned by `owner`. An expired item counts as absent.
        `within`: the audit trail's open transaction to write in (None: its own).
        """
        ...

    def delete(
        self,
        *,
        trace_id: str,
        key: str,
        owner: str,
        writer: str,
        expected_version: int | None,
        now: datetime,
        within: Transaction | None = None,
    ) -> ContextItem:
        """Writes a tombstone version; raises `NotFound` when the item does not exist."""
        ...

    def get(
        self, *, trace_id: str, key: str, version: int = 0, now: datetime
    ) -> ContextItem | None:
        """The latest live version (`version` 0) or the given version, else None."""
        ...

    def list_items(self, *, trace_id: str, prefix: str = "", now: datetime) -> list[ContextItem]:
        """The latest live version of every item of a trace whose key starts with `prefix`."""
        ...

    def history(self, *, trace_id: str, key: str) -> list[ContextItem]:
        """Every stored version of an item, oldest first (tombstones included)."""
        ...

    def changes(self, *, trace_id: str, after_revision: int, limit: int) -> list[ContextItem]:
        """Versions written in a trace after `after_revision`, in revision order."""
        ...

    def purge_expired(self, *, now: datetime) -> int:
        """Deletes items (and their versions) whose time to live ran out; returns how many."""
        ...
