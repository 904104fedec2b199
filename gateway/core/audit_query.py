"""Compliance queries over the audit log: filters, paging by position, and who may see what."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.core.audit_record import AuditRecord
from gateway.errors import InvalidRequest

MAX_PAGE = 1000
"""Largest page a query returns."""

DEFAULT_PAGE = 100


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which records to return and in what order.

    Every filter that is set must match (AND); an empty string or None means any.
    Paging: pass the `next_cursor` of one page as `cursor` of the next; it is a
    log position, so pages stay stable while the log grows.
    """

    since: datetime | None = None
    """Log time at or after."""
    until: datetime | None = None
    """Log time before."""
    source_domain: str = ""
    target_domain: str = ""
    actor: str = ""
    """The principal, e.g. `finance` or `finance/agent/payer`."""
    capability: str = ""
    event_type: str = ""
    decision: str = ""
    outcome: str = ""
    classification: str = ""
    trace_id: str = ""
    involving: frozenset[str] | None = None
    """Only records whose source or target domain is one of these (a domain auditor's view)."""
    cursor: int | None = None
    """Continue after (oldest first) or before (newest first) this position."""
    below: int | None = None
    """Only positions below this one (an export stops at its covering checkpoint)."""
    newest_first: bool = True
    limit: int = DEFAULT_PAGE

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidRequest(f"page size must be 1..{MAX_PAGE}, got {self.limit}")
        if self.cursor is not None and self.cursor < 0:
            raise InvalidRequest("cursor must be a log position (>= 0)")
        for moment in (self.since, self.until):
            if moment is not None and moment.tzinfo is None:
                raise InvalidRequest("query times must carry a time zone")

    def scoped_to(self, domains: frozenset[str] | None) -> AuditQuery:
        """This query restricted to records involving `domains` (None: no restriction)."""
        if domains is None:
            return self
        involving = domains if self.involving is None else self.involving & domains
        return replace(self, involving=involving)


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of a query."""

    records: list[AuditRecord] = field(default_factory=list)
    next_cursor: int | None = None
    """Pass as `cursor` for the next page; None when this was the last page."""
    log_size: int = 0
    """The log's size when the page was read."""
