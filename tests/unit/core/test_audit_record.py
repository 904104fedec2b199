"""The canonical form of audit records: pinned bytes, the rules, and hashing."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_log import LogHead, append, pending
from gateway.core.audit_record import (
    FORMAT_VERSION,
    GENESIS_CHAIN,
    AuditRecord,
    canonical_attributes,
    canonical_form,
    canonical_parts,
    chain_hash,
    clean_text,
    format_time,
    leaf_hash_of,
)
from gateway.core.merkle import leaf_hash, tree_hash

T0 = datetime(2026, 11, 24, 20, 18, 36, 123456, tzinfo=UTC)


def _record(**overrides: object) -> AuditRecord:
    fields: dict[str, object] = {
        "seq": 7,
        "event_id": "e1",
        "event_type": "task.requested",
        "caller_time": T0,
        "log_time": T0 + timedelta(microseconds=5),
        "trace_id": "t1",
        "span_id": "s1",
        "actor": "finance/agent/payer",
        "source_domain": "finance",
        "target_domain": "risk",
        "capability": "score",
        "decision": "allow",
        "rule": "p, finance, risk, score, invoke",
        "policy_version": 3,
        "duration_us": 0,
        "classifications": ("confidential",),
        "attributes": canonical_attributes({"depth": 1, "b": [1, 2.5], "a": None}),
    }
    fields.update(overrides)
    return AuditRecord(**fields)  # type: ignore[arg-type]


def test_canonical_form_is_pinned() -> None:
    # Changing these bytes breaks every existing log: bump FORMAT_VERSION instead.
    assert canonical_form(_record()) == (
        b'{"actor":"finance/agent/payer","attributes":{"a":null,"b":[1,2.5],"depth":1},'
        b'"caller_time":"2026-11-24T20:18:36.123456Z","capability":"score",'
        b'"classifications":["confidential"],"decision":"allow","duration_us":0,'
        b'"event_id":"e1","event_type":"task.requested",'
        b'"log_time":"2026-11-24T20:18:36.123461Z","outcome":"","parent_span_id":"",'
        b'"policy_version":3,"rule":"p, finance, risk, score, invoke","seq":7,'
        b'"source_domain":"finance","span_id":"s1","target_domain":"risk","trace_id":"t1","v":1}'
    )
    assert FORMAT_VERSION == 1


def test_canonical_form_is_sorted_compact_json() -> None:
    text = canonical_form(_record(actor='zoë "q" \\ \n\t\x01 ✓ 𝄞')).decode()
    value = json.loads(text)
    again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert text == again
    assert "zoë" in text and "✓" in text and "𝄞" in text  # noqa: PT018 - one property
    assert '\\"q\\" \\\\ \\n\\t\\u0001' in text


def test_every_field_is_in_the_canonical_form() -> None:
    base = canonical_form(_record())
    changes: dict[str, object] = {
        "seq": 8,
        "event_id": "e2",
        "event_type": "task.finished",
        "caller_time": T0 + timedelta(microseconds=1),
        "log_time": T0,
        "trace_id": "t2",
        "span_id": "s2",
        "parent_span_id": "p",
        "actor": "x",
        "source_domain": "x",
        "target_domain": "x",
        "capability": "x",
        "decision": "deny",
        "rule": "x",
        "policy_version": 4,
        "outcome": "completed",
        "duration_us": 1,
        "classifications": ("public",),
        "attributes": "{}",
    }
    for name, value in changes.items():
        assert canonical_form(_record(**{name: value})) != base, name


def test_hashes() -> None:
    record = _record()
    assert leaf_hash_of(record) == hashlib.sha256(b"\x00" + canonical_form(record)).digest()
    assert leaf_hash_of(record) == leaf_hash(canonical_form(record))
    assert (
        chain_hash(GENESIS_CHAIN, b"\x11" * 32) == hashlib.sha256(bytes(32) + b"\x11" * 32).digest()
    )


def test_times_are_utc_with_six_digits() -> None:
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 1, 2, 5, 4, 5, 7, tzinfo=plus_two)) == (
        "2026-01-02T03:04:05.000007Z"
    )
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 1, 2))


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata")]),
    )
)
def test_times_are_written_as_isoformat_in_utc_would(moment: datetime) -> None:
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    assert format_time(moment) == utc.isoformat(timespec="microseconds") + "Z"


def test_attributes_are_canonical_whatever_they_hold() -> None:
    assert canonical_attributes({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'
    # Keys are strings, sorted as strings: "10" < "9".
    assert canonical_attributes({9: "x", 10: "y"}) == '{"10":"y","9":"x"}'
    assert canonical_attributes({"f": math.nan, "g": math.inf}) == '{"f":"nan","g":"inf"}'
    assert canonical_attributes({"t": T0, "b": b"\x01\xff", "s": {3, 1}, "u": (1, 2)}) == (
        '{"b":"01ff","s":[1,3],"t":"2026-11-24T20:18:36.123456Z","u":[1,2]}'
    )
    assert canonical_attributes({"e": EventType.TASK_ROUTED}) == '{"e":"task.routed"}'
    assert canonical_attributes({"x": "a\x00b\ud800"}) == '{"x":"a\\u0000b\ufffd"}'


def test_clean_text_replaces_what_stores_cannot_keep() -> None:
    assert clean_text("plain") == "plain"
    assert clean_text("a\x00b") == "a\ufffdb"
    assert clean_text("x\udcffy") == "x\ufffdy"
    assert clean_text("ünïcode") == "ünïcode"


def test_append_assigns_positions_and_chains() -> None:
    head = LogHead()
    events = [
        AuditEvent(type=EventType.TASK_REQUESTED, actor=f"a{i}", caller_time=T0) for i in range(5)
    ]
    first = append(head, [pending(e) for e in events[:2]], T0)
    second = append(head, [pending(e) for e in events[2:]], T0)
    records = first + second
    assert [r.seq for r in records] == [0, 1, 2, 3, 4]
    chain = GENESIS_CHAIN
    for record in records:
        assert record.leaf_hash == leaf_hash_of(record)
        chain = chain_hash(chain, record.leaf_hash)
        assert record.chain_hash == chain
    assert head.size == 5
    assert head.chain_hash == chain
    assert head.root() == tree_hash([r.leaf_hash for r in records])


def test_pending_cleans_and_bounds_fields() -> None:
    event = AuditEvent(
        type=EventType.TASK_FINISHED,
        actor="a\x00",
        task_id="task",
        parent_task_id="parent",
        duration_us=1 << 70,
        classifications=("restricted", "public", "public"),
        caller_time=T0,
    )
    item = pending(event)
    assert item.actor == "a\ufffd"
    assert item.span_id == "task"
    assert item.parent_span_id == "parent"
    assert item.duration_us == (1 << 63) - 1
    assert item.classifications == ("public", "restricted")
    with pytest.raises(ValueError, match="naive"):
        pending(AuditEvent(type=EventType.TASK_FINISHED, caller_time=datetime(2026, 1, 1)))


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    strings=st.lists(_text, min_size=13, max_size=13),
    numbers=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=3, max_size=3),
    classifications=st.lists(_text, max_size=3),
    micros=st.integers(0, 10**12),
)
def test_the_fast_canonical_form_is_sorted_key_json(
    strings: list[str], numbers: list[int], classifications: list[str], micros: int
) -> None:
    record = AuditRecord(
        seq=abs(numbers[0]),
        event_id=strings[0],
        event_type=strings[1],
        caller_time=T0 + timedelta(microseconds=micros),
        log_time=T0 - timedelta(microseconds=micros),
        trace_id=strings[2],
        span_id=strings[3],
        parent_span_id=strings[4],
        actor=strings[5],
        source_domain=strings[6],
        target_domain=strings[7],
        capability=strings[8],
        decision=strings[9],
        rule=strings[10],
        policy_version=numbers[1],
        outcome=strings[11],
        duration_us=numbers[2],
        classifications=tuple(classifications),
        attributes=canonical_attributes({"k": strings[12]}),
    )
    reference = {
        "actor": record.actor,
        "attributes": json.loads(record.attributes),
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
    expected = json.dumps(reference, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_form(record) == expected.encode()
    # The writer's path: the form written before the log gives a time and position.
    head, middle, tail = canonical_parts(record, format_time(record.caller_time))
    sealed = f"{head}{format_time(record.log_time)}{middle}{record.seq}{tail}"
    assert sealed.encode() == expected.encode()
