"""Salted content hashes: what the audit trail records instead of context values.

Records name context items by key, classification and a content hash, never the
content. A plain SHA-256 of a guessable value (an amount, a yes/no verdict, a
customer id) could be confirmed by anyone reading the trail who hashes candidates,
so the hash is keyed: HMAC-SHA256 with a federation secret (`audit.content_key`,
created at first start in the state folder, shared by every replica and never
stored in the database). Whoever holds the key can still check that a given value
is the one recorded; readers of the trail alone cannot.

    content_hash = "hmac-sha256:" + hex(HMAC-SHA256(key, canonical bytes))

Canonical bytes: bytes as they are; text as UTF-8; any other JSON value as
compact JSON with sorted keys (the audit record's canonical rules).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

PREFIX = "hmac-sha256:"
"""Names the scheme in every content hash, so it can change later."""


class ContentHasher:
    """Keyed content hashes for audit records.

    Args:
        key: The federation's content secret (at least 16 bytes).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a content key has at least 16 bytes")
        self._key = key

    def hash(self, value: bytes | str | Any) -> str:
        """The salted hash of `value` (bytes, text or a JSON value)."""
        return PREFIX + hmac.new(self._key, canonical_content(value), hashlib.sha256).hexdigest()

    def matches(self, value: bytes | str | Any, recorded: str) -> bool:
        """True if `recorded` is the hash of `value` (constant-time comparison)."""
        return hmac.compare_digest(self.hash(value), recorded)


def canonical_content(value: bytes | str | Any) -> bytes:
    """The bytes a content hash covers."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
