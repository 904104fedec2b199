"""Salted content hashes: stable, keyed, and not confirmable without the key."""

from __future__ import annotations

import hashlib

import pytest

from gateway.core.content_hash import PREFIX, ContentHasher, canonical_content


def test_hashes_are_keyed_and_stable() -> None:
    one, other = ContentHasher(b"k" * 32), ContentHasher(b"x" * 32)
    assert one.hash("42.50") == one.hash(b"42.50")
    assert one.hash("42.50").startswith(PREFIX)
    assert one.hash("42.50") != other.hash("42.50")
    # Without the key a guess cannot be confirmed with a plain hash.
    assert one.hash("42.50") != PREFIX + hashlib.sha256(b"42.50").hexdigest()
    assert one.matches("42.50", one.hash("42.50"))
    assert not one.matches("42.51", one.hash("42.50"))


def test_json_values_are_canonical() -> None:
    hasher = ContentHasher(bytes(range(32)))
    assert hasher.hash({"b": 1, "a": [1, "ü"]}) == hasher.hash({"a": [1, "ü"], "b": 1})
    assert canonical_content({"b": 1, "a": "ü"}) == '{"a":"ü","b":1}'.encode()
    with pytest.raises(ValueError, match="16 bytes"):
        ContentHasher(b"short")
