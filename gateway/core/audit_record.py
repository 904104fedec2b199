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
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Protocol

FORMAT_VERSION = 1
"""Version of the canonical form, the `v` member of every record."""

GENESIS_CHAIN = bytes(32)
"""The chain hash "before" the first record."""

_quote = json.encoder.encode_basestring
# The C string encoder json uses with ensure_ascii=False: a JSON string, quotes included.
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
# `JSONEncoder.encode` builds this C encoder on every call; built once, without
# circular-reference markers (attributes are trees), it costs half as much.
_c_encode = (
    None
    if _c_make_encoder is None  # a Python without the json C accelerator
    else _c_make_encoder(None, _encoder.default, _quote, None, ":", ",", True, False, False)
)


def _encode(value: Any) -> str:
    if _c_encode is None:
        return _encoder.encode(value)
    return "".join(_c_encode(value, 0))


_REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(slots=True)
class AuditRecord:
    """One record of the audit log: the event, its position, time and hashes.

    Treat it as immutable. It is not a frozen dataclass only because a frozen
    one's constructor costs ten times as much, and writing and verifying the log
    build one per record.
    """

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
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment!r} in an audit record")
        moment = moment.astimezone(UTC)
    # Field by field, with %: `isoformat` asks the time zone for its offset and an
    # f-string formats each field apart; both cost twice as much.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


def classifications_text(classifications: tuple[str, ...]) -> str:
    """Classifications as the canonical form writes them (and the store keeps them)."""
    return _encode(list(classifications)) if classifications else "[]"


class RecordFields(Protocol):
    """The fields of a record that its canonical form holds, besides position and log time."""

    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def caller_time(self) -> datetime: ...
    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def source_domain(self) -> str: ...
    @property
    def target_domain(self) -> str: ...
    @property
    def capability(self) -> str: ...
    @property
    def decision(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def policy_version(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def duration_us(self) -> int: ...
    @property
    def classifications(self) -> tuple[str, ...]: ...
    @property
    def attributes(self) -> str: ...


def canonical_form(record: AuditRecord) -> bytes:
    """The canonical JSON form of a record (the module docstring defines it)."""
    return canonical_form_of(record, record.seq, format_time(record.log_time))


def canonical_form_of(fields: RecordFields, seq: int, log_time: str) -> bytes:
    """The canonical form of `fields` placed at `seq` at `log_time` (already formatted).

    Written out member by member in key order (the hot path of verifying); a test
    holds it equal to `json.dumps(..., sort_keys=True)`.
    """
    return placed(canonical_parts(fields, format_time(fields.caller_time)), seq, log_time)


def placed(parts: tuple[str, str, str], seq: int, log_time: str) -> bytes:
    """The canonical form from `canonical_parts`, placed at `seq` at `log_time`."""
    head, middle, tail = parts
    return f"{head}{log_time}{middle}{seq}{tail}".encode()


_TEMPLATE = (
    '{"actor":%s,"attributes":%s,"caller_time":"%s","capability":%s,"classifications":%s,'
    '"decision":%s,"duration_us":%d,"event_id":%s,"event_type":%s,"log_time":"%s",'
    '"outcome":%s,"parent_span_id":%s,"policy_version":%d,"rule":%s,"seq":%d,'
    '"source_domain":%s,"span_id":%s,"target_domain":%s,"trace_id":%s,"v":'
    + str(FORMAT_VERSION)
    + "}"
)


# The template cut around the two members only the log knows (log time, position),
# so a record's other members are written once, before the writer seals it.
_HEAD, _rest = _TEMPLATE.split('"log_time":"%s"', 1)
_HEAD += '"log_time":"'
_MIDDLE, _TAIL = _rest.split('"seq":%d', 1)
_MIDDLE = '"' + _MIDDLE + '"seq":'


def canonical_parts(fields: RecordFields, caller_time: str) -> tuple[str, str, str]:
    """The canonical form of `fields` around its log time and position, as text.

    `head + log_time + middle + str(seq) + tail`, UTF-8 encoded, is
    `canonical_form_of(fields, seq, log_time)`. `caller_time` is
    `format_time(fields.caller_time)`, which the caller already has.
    """
    q = _quote
    return (
        _HEAD
        % (
            q(fields.actor),
            fields.attributes,
            caller_time,
            q(fields.capability),
            classifications_text(fields.classifications),
            q(fields.decision),
            fields.duration_us,
            q(fields.event_id),
            q(fields.event_type),
        ),
        _MIDDLE
        % (q(fields.outcome), q(fields.parent_span_id), fields.policy_version, q(fields.rule)),
        _TAIL
        % (q(fields.source_domain), q(fields.span_id), q(fields.target_domain), q(fields.trace_id)),
    )


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
    if type(attributes) is dict:
        for key, value in attributes.items():
            if type(key) is not str or type(value) not in _SIMPLE:
                break
        else:
            return clean_text(_encode(attributes))  # flat and plain: the common case
    # Otherwise through `_plain`: json would sort non-string keys before turning
    # them into strings (9 before 10), which is not code point order.
    return clean_text(_encode(_plain(attributes)))


_SIMPLE = frozenset({str, int, bool, type(None)})


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


JSON_FIELDS = (
    "seq",
    "event_id",
    "event_type",
    "caller_time",
    "log_time",
    "trace_id",
    "span_id",
    "parent_span_id",
    "actor",
    "source_domain",
    "target_domain",
    "capability",
    "decision",
    "rule",
    "policy_version",
    "outcome",
    "duration_us",
    "classifications",
    "attributes",
    "leaf_hash",
    "chain_hash",
)
"""The members of a record's JSON form (exports, proof bundles), in column order."""


def record_to_json(record: AuditRecord) -> dict[str, Any]:
    """A record as JSON-ready data; `record_from_json` gives back an equal record.

    Times are canonical RFC 3339 text, attributes are the canonical JSON text (a
    string, so the leaf hash can be recomputed byte for byte), hashes are hex.
    """
    return {
        "seq": record.seq,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "caller_time": format_time(record.caller_time),
        "log_time": format_time(record.log_time),
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_span_id": record.parent_span_id,
        "actor": record.actor,
        "source_domain": record.source_domain,
        "target_domain": record.target_domain,
        "capability": record.capability,
        "decision": record.decision,
        "rule": record.rule,
        "policy_version": record.policy_version,
        "outcome": record.outcome,
        "duration_us": record.duration_us,
        "classifications": list(record.classifications),
        "attributes": record.attributes,
        "leaf_hash": record.leaf_hash.hex(),
        "chain_hash": record.chain_hash.hex(),
    }


def parse_time(text: str) -> datetime:
    """Reads a canonical time (`format_time`) back."""
    if not text.endswith("Z"):
        raise ValueError(f"not a canonical UTC time: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def record_from_json(value: Mapping[str, Any]) -> AuditRecord:
    """The record of `record_to_json` output.

    Raises:
        ValueError: A member is missing or of the wrong type.
    """
    try:
        record = AuditRecord(
            seq=_int(value["seq"]),
            event_id=_str(value["event_id"]),
            event_type=_str(value["event_type"]),
            caller_time=parse_time(_str(value["caller_time"])),
            log_time=parse_time(_str(value["log_time"])),
            trace_id=_str(value["trace_id"]),
            span_id=_str(value["span_id"]),
            parent_span_id=_str(value["parent_span_id"]),
            actor=_str(value["actor"]),
            source_domain=_str(value["source_domain"]),
            target_domain=_str(value["target_domain"]),
            capability=_str(value["capability"]),
            decision=_str(value["decision"]),
            rule=_str(value["rule"]),
            policy_version=_int(value["policy_version"]),
            outcome=_str(value["outcome"]),
            duration_us=_int(value["duration_us"]),
            classifications=tuple(_str(c) for c in value["classifications"]),
            attributes=_str(value["attributes"]),
            leaf_hash=bytes.fromhex(_str(value["leaf_hash"])),
            chain_hash=bytes.fromhex(_str(value["chain_hash"])),
        )
    except KeyError as exc:
        raise ValueError(f"record member {exc.args[0]!r} is missing") from exc
    except TypeError as exc:
        raise ValueError(f"malformed record: {exc}") from exc
    return record


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
