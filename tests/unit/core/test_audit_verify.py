"""The offline log verifier on an in-memory log: each kind of tampering, named."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_log import LogHead, append, pending
from gateway.core.audit_record import GENESIS_CHAIN, AuditRecord, chain_hash, leaf_hash_of
from gateway.core.audit_verify import CheckpointNote, LogVerifier, Problem, VerifyReport
from gateway.core.checkpoint import Checkpoint
from gateway.core.signed_note import NoteSigner

ORIGIN = "fedgate.test/audit"
SIGNER = NoteSigner.generate(ORIGIN)
T0 = datetime(2026, 11, 24, tzinfo=UTC)


@dataclasses.dataclass
class Log:
    records: list[AuditRecord]
    head: LogHead
    notes: list[CheckpointNote]


def build(size: int = 50, every: int = 10) -> Log:
    head = LogHead()
    records: list[AuditRecord] = []
    notes: list[CheckpointNote] = []
    for start in range(0, size, every):
        events = [
            AuditEvent(
                type=EventType.TASK_REQUESTED,
                actor=f"d{i % 3}",
                target_domain="risk",
                caller_time=T0,
                attributes={"i": i},
            )
            for i in range(start, min(size, start + every))
        ]
        records += append(head, [pending(e) for e in events], T0)
        checkpoint = Checkpoint(ORIGIN, head.size, head.root())
        notes.append(CheckpointNote(checkpoint.sign([SIGNER]), "database"))
    return Log(records, head, notes)


def verify(log: Log, outside: list[CheckpointNote] | None = None) -> VerifyReport:
    verifier = LogVerifier([SIGNER.verifier], ORIGIN, log.notes, outside or [])
    for record in log.records:
        verifier.feed(record)
    return verifier.finish(log.head)


def rehash(records: list[AuditRecord], start: int) -> list[AuditRecord]:
    """What an attacker who knows the format does: recompute leaf and chain hashes."""
    chain = records[start - 1].chain_hash if start else GENESIS_CHAIN
    out = records[:start]
    for record in records[start:]:
        leaf = leaf_hash_of(record)
        chain = chain_hash(chain, leaf)
        out.append(dataclasses.replace(record, leaf_hash=leaf, chain_hash=chain))
    return out


def problems(report: VerifyReport) -> set[Problem]:
    return {f.problem for f in report.findings}


def test_an_untouched_log_verifies() -> None:
    log = build()
    report = verify(log)
    assert report.ok, report.findings
    assert report.records == 50
    assert report.checkpoints == 5
    assert report.newest_checkpoint == 50
    assert report.unsigned_records == 0
    assert report.root_hash == log.head.root()


def test_edited_field() -> None:
    log = build()
    log.records[23] = dataclasses.replace(log.records[23], target_domain="finance")
    report = verify(log)
    assert report.first_bad_seq == 23
    assert Problem.EDITED in problems(report)


def test_edited_field_with_its_own_hashes_recomputed() -> None:
    log = build()
    log.records[23] = dataclasses.replace(log.records[23], decision="deny")
    log.records = rehash(log.records, 23)[:24] + log.records[24:]
    report = verify(log)
    assert report.first_bad_seq == 23
    assert Problem.CHAIN_BROKEN in problems(report)


def test_deleted_record() -> None:
    log = build()
    del log.records[17]
    report = verify(log)
    assert report.first_bad_seq == 17
    assert Problem.MISSING in problems(report)


def test_deleted_record_with_the_rest_renumbered() -> None:
    log = build()
    del log.records[17]
    log.records = [
        dataclasses.replace(r, seq=i) if i >= 17 else r for i, r in enumerate(log.records)
    ]
    log.head.size -= 1
    report = verify(log)
    assert report.first_bad_seq == 17


def test_inserted_record() -> None:
    log = build()
    forged = dataclasses.replace(log.records[30], event_id="forged", actor="mallory")
    records = [*log.records[:30], forged, *log.records[30:]]
    records = [dataclasses.replace(r, seq=i) if i >= 30 else r for i, r in enumerate(records)]
    # The forged record is hashed and chained properly; the ones after it are not.
    leaf = leaf_hash_of(records[30])
    records[30] = dataclasses.replace(
        records[30], leaf_hash=leaf, chain_hash=chain_hash(records[29].chain_hash, leaf)
    )
    log.records = records
    log.head.size += 1
    report = verify(log)
    assert report.first_bad_seq == 30
    assert Problem.INSERTED in problems(report)


def test_reordered_records() -> None:
    log = build()
    a, b = log.records[12], log.records[15]
    log.records[12] = dataclasses.replace(b, seq=12)
    log.records[15] = dataclasses.replace(a, seq=15)
    report = verify(log)
    assert report.first_bad_seq == 12


def test_truncated_tail() -> None:
    log = build()
    log.records = log.records[:44]
    report = verify(log)
    assert report.first_bad_seq == 44
    assert Problem.TRUNCATED in problems(report)


def test_truncated_tail_with_head_and_checkpoints_fixed_up_is_caught_outside() -> None:
    log = build()
    outside = list(log.notes)
    log.records = log.records[:44]
    log.head = LogHead()
    append(log.head, [], T0)
    # The attacker rebuilds a consistent head and drops the database checkpoint of 50.
    head = LogHead()
    for record in log.records:
        head.frontier.append(record.leaf_hash)
    head.size, head.chain_hash = 44, log.records[-1].chain_hash
    log.head = head
    log.notes = log.notes[:4]
    report = verify(log, outside)
    assert report.first_bad_seq == 44
    assert {Problem.TRUNCATED, Problem.CHECKPOINT_DELETED} <= problems(report)


def test_rewritten_and_rehashed_suffix() -> None:
    log = build()
    for i in range(33, 50):
        log.records[i] = dataclasses.replace(log.records[i], outcome="rewritten")
    log.records = rehash(log.records, 33)
    head = LogHead()
    for record in log.records:
        head.frontier.append(record.leaf_hash)
    head.size, head.chain_hash = 50, log.records[-1].chain_hash
    log.head = head
    report = verify(log)
    # Checkpoint 30 still matches, 40 does not: the first untrusted record is 30.
    assert report.first_bad_seq == 30
    assert problems(report) == {Problem.REWRITTEN}


def test_deleted_checkpoints_are_caught_by_the_outside_copy() -> None:
    log = build()
    outside = list(log.notes)
    log.notes = [log.notes[0], log.notes[4]]
    report = verify(log, outside)
    deleted = [f for f in report.findings if f.problem is Problem.CHECKPOINT_DELETED]
    assert len(deleted) == 3
    assert "size 20" in deleted[0].message


def test_a_forged_checkpoint_is_invalid() -> None:
    log = build()
    mallory = NoteSigner.generate(ORIGIN)
    log.notes.append(CheckpointNote(Checkpoint(ORIGIN, 5, bytes(32)).sign([mallory]), "database"))
    report = verify(log)
    assert problems(report) == {Problem.CHECKPOINT_INVALID}


def test_two_signed_checkpoints_of_one_size_that_disagree() -> None:
    log = build()
    other = Checkpoint(ORIGIN, 20, bytes(32)).sign([SIGNER])
    report = verify(log, [CheckpointNote(other, "/outside/20")])
    assert Problem.CHECKPOINT_CONFLICT in problems(report)


def test_records_after_the_newest_checkpoint_are_reported_as_unsigned() -> None:
    log = build(size=50, every=10)
    log.notes = log.notes[:3]
    report = verify(log)
    assert report.ok
    assert report.newest_checkpoint == 30
    assert report.unsigned_records == 20


@pytest.mark.parametrize("cut", [45, 49])
def test_cutting_unsigned_records_with_the_head_is_not_caught(cut: int) -> None:
    # Documented limit: nothing signed covers records after the newest checkpoint.
    log = build(size=50, every=10)
    log.notes = log.notes[:4]
    log.records = log.records[:cut]
    head = LogHead()
    for record in log.records:
        head.frontier.append(record.leaf_hash)
    head.size, head.chain_hash = cut, log.records[-1].chain_hash
    log.head = head
    assert verify(log).ok


def test_findings_are_capped() -> None:
    log = build(size=300, every=300)
    log.records = [dataclasses.replace(r, actor="x") for r in log.records]
    report = verify(log)
    assert len(report.findings) == 100
    assert report.dropped_findings > 0
    assert not report.ok
