"""An audit record as the log stores it, its canonical form and its hashes.

Canonical form (format version 1)
---------------------------------
The leaf input of record `seq` is the UTF-8 encoding of one JSON object (RFC 8259)
with exactly these members:

    actor, attributes, caller_time, capability, classifications, decision,
    duration_us, event_id, event_type, log_time, outcome, parent_span_id,
    policy_version, rule, seq, source_domain, span_id, target_domain, trace_id, v

- members appear sorted by key (Unicode code point order, at every depth);
- no whitespace outside strings; `:` and `,` separate;
- strings use the shortest JSON escapes: `\\"`, `\\\\`, `\\b`, `\\f`, `\\n`, `\\r`,
  `\\t`, `\\u00XX` (lowercase hex) for other characters below U+0020, every other
  character is written as itself (UTF-8, never `\\u`-escaped);
- `v` is the format version (1); `seq`, `duration_us`, `policy_version` are JSON
  integers; times are RFC 3339 UTC strings with exactly six fractional digits and
  `Z` (`2026-11-24T20:18:36.123456Z`); `classifications` is an array of strings;
- `attributes` is a JSON object, canonical by the same rules; numbers inside it are
  integers, or floats in their shortest round-trip form (Python `repr`).

The record's strings never contain NUL (U+0000) or unpaired surrogates: the writer
replaces them with U+FFFD before hashing, so what is stored is what was hashed.

Hashes
------
    leaf_hash  = SHA-256(0x00 || canonical form)              (RFC 6962 leaf)
    chain_hash = SHA-256(chain_hash of seq-1 || leaf_hash)     (32 zero bytes before seq 0)

The Merkle tree over the leaf hashes (see `gateway.core.merkle`) is what signed
checkpoints commit to.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

FORMAT_VERSION = 1
"""Version of the canonical form, the `v` member of every record."""

GENESIS_CHAIN = bytes(32)
"""The chain hash "before" the first record."""

_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode
_REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record of the audit log: the event, its position, time and hashes."""

    seq: int
    """Position in the log: 0, 1, 2, ... without gaps."""
    event_id: str
    """Unique id of the event; writing it again does not add a record."""
    event_type: str
    caller_time: datetime
    """When the event happened, by the clock of whoever reported it."""
    log_time: datetime
    """When the log assigned the position, by the writer's clock."""
    trace_id: str = ""
    span_id: str = ""
    """The task (a span of the trace) the record is about."""
    parent_span_id: str = ""
    actor: str = ""
    source_domain: str = ""
    target_domain: str = ""
    capability: str = ""
    decision: str = ""
    rule: str = ""
    policy_version: int = 0
    outcome: str = ""
    duration_us: int = 0
    classifications: tuple[str, ...] = ()
    attributes: str = "{}"
    """The attributes as canonical JSON text (see `canonical_attributes`)."""
    leaf_hash: bytes = b""
    chain_hash: bytes = b""

    def canonical(self) -> bytes:
        """The canonical form: the leaf input of this record."""
        return canonical_form(self)

    def attribute_values(self) -> dict[str, Any]:
        """The attributes as a dict."""
        value: dict[str, Any] = json.loads(self.attributes)
        return value


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits: `2026-11-24T20:18:36.123456Z`."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r} in an audit record")
    if moment.utcoffset() != timedelta(0):
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_form(record: AuditRecord) -> bytes:
    """The canonical JSON form of a record (the module docstring defines it)."""
    rest = {
        "caller_time": format_time(record.caller_time),
        "capability": record.capability,
        "classifications": list(record.classifications),
        "decision": record.decision,
        "duration_us": record.duration_us,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "log_time": format_time(record.log_time),
        "outcome": record.outcome,
        "parent_span_id": record.parent_span_id,
        "policy_version": record.policy_version,
        "rule": record.rule,
        "seq": record.seq,
        "source_domain": record.source_domain,
        "span_id": record.span_id,
        "target_domain": record.target_domain,
        "trace_id": record.trace_id,
        "v": FORMAT_VERSION,
    }
    # "actor" < "attributes" < every other key; attributes are already canonical text.
    text = '{"actor":' + _encode(record.actor) + ',"attributes":' + record.attributes
    return (text + "," + _encode(rest)[1:]).encode()


def leaf_hash_of(record: AuditRecord) -> bytes:
    """SHA-256(0x00 || canonical form)."""
    return hashlib.sha256(b"\x00" + canonical_form(record)).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """SHA-256(previous chain hash || leaf hash)."""
    return hashlib.sha256(previous + leaf).digest()


def clean_text(value: str) -> str:
    """`value` without NUL characters or unpaired surrogates (each becomes U+FFFD)."""
    if "\x00" in value:
        value = value.replace("\x00", _REPLACEMENT)
    if value.isascii():
        return value
    # A Python string holds code points, so any surrogate in it is unpaired.
    return _SURROGATE.sub(_REPLACEMENT, value)


def canonical_attributes(attributes: Mapping[str, Any]) -> str:
    """Attributes as canonical JSON text (sorted keys, compact, UTF-8, clean strings).

    Values that JSON cannot hold are converted: datetimes to RFC 3339 text, bytes
    to hex, sets to sorted lists, enums to their value, non-finite floats and
    anything else to their string form. Keys become strings.
    """
    # Always through `_plain`: json would sort non-string keys before turning them
    # into strings (9 before 10), which is not code point order.
    return clean_text(_encode(_plain(attributes)))


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, datetime):
        return format_time(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)
