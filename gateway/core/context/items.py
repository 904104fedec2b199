"""Context items: versioned JSON values in the federation's shared context space.

An item lives in one trace (one end-to-end piece of work) under a key. Its owner is
the domain that created it (proven by its certificate), its classification says how
sensitive it is, and its version starts at 1 and grows by one per write (a delete
writes a tombstone version). Every write of a trace also takes the trace's next
*revision*, a counter that orders all changes of the trace: Watch resumes from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.core.models import Classification
from gateway.errors import InvalidRequest

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}")
"""Context keys: 1-200 characters, usable as the object of a policy rule."""

TRACE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Trace ids as the gateway issues them (32 hex digits) or callers chose them."""


def check_key(key: str) -> str:
    """Returns `key` if valid, else raises `InvalidRequest`."""
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidRequest(
            f"invalid context key {key!r}: 1-200 characters of [A-Za-z0-9_.:/-], "
            "starting with a letter or digit"
        )
    return key


def check_prefix(prefix: str) -> str:
    """Returns a key prefix if valid (empty is valid: every key), else raises."""
    if prefix and not KEY_PATTERN.fullmatch(prefix):
        raise InvalidRequest(f"invalid context key prefix {prefix!r}")
    return prefix


def check_trace(trace_id: str) -> str:
    """Returns `trace_id` if valid, else raises `InvalidRequest`."""
    if not TRACE_PATTERN.fullmatch(trace_id):
        raise InvalidRequest(
            f"invalid trace id {trace_id!r}: 1-64 characters of [A-Za-z0-9_-] (context lives "
            "in a trace; pass the trace of the work it belongs to)"
        )
    return trace_id


def classification_name(classification: Classification) -> str:
    """`public`, `internal`, `confidential` or `restricted`."""
    return classification.name.lower()


@dataclass(frozen=True, slots=True)
class ContextItem:
    """One version of a context item, as stored."""

    trace_id: str
    key: str
    version: int
    owner: str
    """Domain that owns the item: the one that created it."""
    classification: Classification
    value: Any
    """The JSON value; None for a tombstone."""
    revision: int
    """The trace's change counter when this version was written."""
    written_at: datetime
    written_by: str
    """Principal that wrote this version (`support` or `support/agent/intake`)."""
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    deleted: bool = False
    """True for the tombstone a delete writes."""

    @property
    def ref(self) -> str:
        """`key@version`, how logs and errors name it."""
        return f"{self.key}@{self.version}"


@dataclass(frozen=True, slots=True)
class ContextView:
    """An item as one reader may see it: the whole item, or a redacted stub.

    A redacted view keeps key, version, classification and owner (the reader learns
    that the item exists and how sensitive it is) and drops the value; `reason`
    says which rule withheld it.
    """

    item: ContextItem
    redacted: bool = False
    reason: str = ""

    @property
    def value(self) -> Any:
        """The value, or None when redacted."""
        return None if self.redacted else self.item.value


@dataclass(frozen=True, slots=True)
class ContextWrite:
    """A write as a caller asks for it."""

    trace_id: str
    key: str
    value: Any
    classification: Classification | None = None
    """None: the default (a task's declared classification, else internal)."""
    expected_version: int | None = None
    """None: write whatever the current version is; 0: create only; n: only over n."""
    ttl_seconds: float | None = None
    """None: the gateway's default time to live."""
    task_id: str = ""
    grant: str = ""
    """The write grant of the task writing back (see `gateway.core.context.grant`)."""
