"""Nested calls: which trace a task joins, how deep it is, and whether it loops.

A task knows the `domain/capability` path from the root task down to itself.
A new call extends its parent's path; it is refused when the path would exceed
the depth limit or name a capability already on it (a cycle: A/x -> B/y -> A/x).
Calling back into another capability of a domain already on the path is allowed,
since that is ordinary collaboration, not recursion.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from gateway.core.models import CapabilityTarget, Principal
from gateway.core.task import TaskInfo
from gateway.errors import CallChainRefused, InvalidRequest


@dataclass(frozen=True, slots=True)
class ChainPosition:
    """Where a new task sits: its trace, depth and full call path."""

    trace_id: str
    depth: int
    call_path: tuple[str, ...]


def new_trace_id() -> str:
    """A fresh W3C-style 32-hex-digit trace id (16 random bytes)."""
    return secrets.token_hex(16)


def position(
    *,
    caller: Principal,
    target: CapabilityTarget,
    trace_id: str,
    parent: TaskInfo | None,
    parent_task_id: str,
    claimed_path: tuple[str, ...],
    max_depth: int,
) -> ChainPosition:
    """Places a call in its chain, refusing cycles and excessive depth.

    `parent` is the parent task when this gateway tracks it (authoritative); when
    another replica runs the parent, `claimed_path` (echoed by the caller's SDK)
    stands in for it.
    """
    if parent is not None:
        if parent.target.domain != caller.domain:
            raise InvalidRequest(
                f"parent task {parent.task_id} runs in domain {parent.target.domain!r}, "
                f"not in the caller's domain {caller.domain!r}"
            )
        path = parent.call_path
        trace = parent.trace_id
    else:
        path = claimed_path if parent_task_id else ()
        trace = trace_id or new_trace_id()
    entry = f"{target.domain}/{target.name}"
    if entry in path:
        chain = " -> ".join((*path, entry))
        raise CallChainRefused(f"call cycle refused: {chain} re-enters {entry}")
    depth = len(path) + 1
    if depth > max_depth:
        raise CallChainRefused(
            f"call depth {depth} exceeds the limit of {max_depth} ({' -> '.join((*path, entry))})"
        )
    return ChainPosition(trace_id=trace, depth=depth, call_path=(*path, entry))
