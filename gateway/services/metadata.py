"""gRPC metadata keys the federation uses, in one place for gateway, SDK and CLI.

Gateway -> domain (`Execute`): trace, task, parent task and call path of the task.
Domain -> gateway (nested `Invoke`): the SDK echoes the call path it was given and
names its acting agent (and, in insecure mode only, its domain).
"""

from __future__ import annotations

TRACE_ID = "fedgate-trace-id"
"""Trace the task belongs to."""

TASK_ID = "fedgate-task-id"
"""The task being executed."""

PARENT_TASK_ID = "fedgate-parent-task-id"
"""The task that caused this one; empty at the root."""

CALL_PATH = "fedgate-call-path"
"""Comma-separated `domain/capability` chain from the root task down to this one."""

CALLER_DOMAIN = "fedgate-caller-domain"
"""The calling domain, asserted. Only insecure mode takes it as the identity; with mTLS the
certificate proves the domain and a value naming another domain is refused."""

CALLER_AGENT = "fedgate-agent"
"""Agent acting inside the caller's domain, `agent/<name>`."""

AUDIT_RECEIPT = "fedgate-audit-receipt"
"""Trailing metadata of Invoke, one value per audit record of the call: `<seq>:<leaf hash hex>`
(ask `fedgate audit prove --seq <seq>` for its inclusion proof)."""

RETRY_AFTER_MS = "retry-after-ms"
"""Trailing metadata of a RESOURCE_EXHAUSTED answer: milliseconds until a retry may fit."""


def encode_receipt(seq: int, leaf_hash: bytes) -> str:
    """An audit receipt as one metadata value."""
    return f"{seq}:{leaf_hash.hex()}"


def decode_receipt(value: str) -> tuple[int, bytes]:
    """A receipt metadata value back to (seq, leaf hash); ValueError if malformed."""
    seq, _, leaf = value.partition(":")
    return int(seq), bytes.fromhex(leaf)


def encode_call_path(path: tuple[str, ...]) -> str:
    """The call path as one metadata value."""
    return ",".join(path)


def decode_call_path(value: str) -> tuple[str, ...]:
    """A call path metadata value back to its parts (empty value: empty path)."""
    return tuple(p for p in value.split(",") if p)
