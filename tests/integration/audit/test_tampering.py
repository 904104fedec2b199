"""Tampering with a real audit database, then `verify`: each kind is caught and named.

The log is written by the real writer (keys, checkpoints every 10 records, copies
outside the database), then changed with SQL the way someone with database access
would, and checked by `verify_log` and the `fedgate audit verify` command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from gateway.audit.keys import read_verifiers
from gateway.audit.outside import CheckpointDirectory
from gateway.audit.trail import open_audit_trail
from gateway.audit.verification import verify_log
from gateway.cli.main import app
from gateway.core.audit_record import GENESIS_CHAIN, chain_hash, leaf_hash_of
from gateway.core.audit_verify import Problem, VerifyReport
from gateway.core.merkle import MerkleFrontier
from gateway.settings import AuditSettings, Settings
from gateway.store.audit_store import SqlAuditStore, record_from_row
from gateway.store.audit_tables import audit_checkpoints, audit_head, audit_records
from gateway.store.database import migrate, open_engine

from .conftest import event

SIZE = 50


@dataclasses.dataclass
class Trail:
    settings: Settings
    engine: Engine
    store: SqlAuditStore

    def verify(self) -> VerifyReport:
        folder = CheckpointDirectory(
            self.settings.audit.checkpoint_directory(self.settings.state_dir)
        )
        keys = read_verifiers(folder.key_files())
        return verify_log(self.store, keys, self.settings.audit.origin, [folder]).report


@pytest.fixture
async def trail(db_url: str, tmp_path: Path) -> Iterator[Trail]:
    settings = Settings(
        state_dir=tmp_path / "state",
        database_url=db_url,
        audit=AuditSettings(checkpoint_every_records=10, checkpoint_every_seconds=3600),
    )
    engine = open_engine(db_url)
    migrate(engine)
    sink = open_audit_trail(settings, engine)
    for start in range(0, SIZE, 5):
        await sink.record([event(i) for i in range(start, start + 5)])
    sink.close()
    yield Trail(settings, engine, SqlAuditStore(engine))
    engine.dispose()


def _set_seq(conn: sa.Connection, old: int, new: int) -> None:
    conn.execute(sa.update(audit_records).where(audit_records.c.seq == old).values(seq=new))


def _shift(conn: sa.Connection, start: int, by: int) -> None:
    """Renumbers records from `start` on (through negative numbers: seq is unique)."""
    c = audit_records.c
    conn.execute(sa.update(audit_records).where(c.seq >= start).values(seq=-(c.seq + by) - 1))
    conn.execute(sa.update(audit_records).where(c.seq < 0).values(seq=-c.seq - 1))


def _rehash(conn: sa.Connection, start: int) -> None:
    """Recomputes leaf and chain hashes from `start` on, and a matching head."""
    rows = conn.execute(sa.select(*audit_records.c).order_by(audit_records.c.seq)).all()
    records = [record_from_row(r) for r in rows]
    chain = GENESIS_CHAIN
    frontier = MerkleFrontier()
    for record in records:
        leaf, link = record.leaf_hash, record.chain_hash
        if record.seq >= start:
            leaf = leaf_hash_of(record)
            link = chain_hash(chain, leaf)
            conn.execute(
                sa.update(audit_records)
                .where(audit_records.c.seq == record.seq)
                .values(leaf_hash=leaf, chain_hash=link)
            )
        chain = link
        frontier.append(leaf)
    conn.execute(
        sa.update(audit_head).values(
            size=len(records), chain_hash=chain, frontier=frontier.to_bytes()
        )
    )


def _problems(report: VerifyReport) -> set[Problem]:
    return {f.problem for f in report.findings}


def test_the_untouched_trail_verifies(trail: Trail) -> None:
    report = trail.verify()
    assert report.ok, report.findings
    assert report.records == SIZE
    assert report.newest_checkpoint == SIZE
    assert report.outside_checkpoints == report.checkpoints == 6  # 5, 15, 25, 35, 45, 50


def test_an_edited_field(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        conn.execute(
            sa.update(audit_records).where(audit_records.c.seq == 23).values(decision="deny")
        )
    report = trail.verify()
    assert report.first_bad_seq == 23
    assert Problem.EDITED in _problems(report)


@pytest.mark.parametrize("seq", [20, 22, 24])  # first, middle, last of one group commit
def test_an_edited_log_time_within_a_group_commit(trail: Trail, seq: int) -> None:
    # The records of one transaction share a log time, which verify reads once for
    # them: a record whose time differs from its neighbours' must still be named.
    c = audit_records.c
    with trail.engine.begin() as conn:
        shared = conn.execute(sa.select(c.log_time).where(c.seq == 22)).scalar_one()
        assert conn.execute(sa.select(c.log_time).where(c.seq == 20)).scalar_one() == shared
        later = shared + timedelta(microseconds=1)
        conn.execute(sa.update(audit_records).where(c.seq == seq).values(log_time=later))
    report = trail.verify()
    assert report.first_bad_seq == seq
    assert [f.seq for f in report.findings if f.problem is Problem.EDITED] == [seq]


def test_a_deleted_record(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        conn.execute(sa.delete(audit_records).where(audit_records.c.seq == 17))
    report = trail.verify()
    assert report.first_bad_seq == 17
    assert Problem.MISSING in _problems(report)


def test_a_deleted_record_with_the_rest_renumbered(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        conn.execute(sa.delete(audit_records).where(audit_records.c.seq == 17))
        _shift(conn, 18, -1)
        conn.execute(sa.update(audit_head).values(size=SIZE - 1))
    assert trail.verify().first_bad_seq == 17


def test_an_inserted_record(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        original = record_from_row(
            conn.execute(sa.select(*audit_records.c).where(audit_records.c.seq == 30)).one()
        )
        previous = conn.execute(
            sa.select(audit_records.c.chain_hash).where(audit_records.c.seq == 29)
        ).scalar_one()
        _shift(conn, 30, 1)
        forged = dataclasses.replace(original, event_id="forged", actor="mallory")
        leaf = leaf_hash_of(forged)
        row = {c.name: getattr(forged, c.name, None) for c in audit_records.c}
        row.update(
            classifications="[]"
            if not forged.classifications
            else str(list(forged.classifications)),
            leaf_hash=leaf,
            chain_hash=chain_hash(bytes(previous), leaf),
        )
        conn.execute(sa.insert(audit_records).values(row))
        conn.execute(sa.update(audit_head).values(size=SIZE + 1))
    report = trail.verify()
    assert report.first_bad_seq == 30
    assert Problem.INSERTED in _problems(report)


def test_reordered_records(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        _set_seq(conn, 12, -1)
        _set_seq(conn, 15, 12)
        _set_seq(conn, -1, 15)
    assert trail.verify().first_bad_seq == 12


def test_a_truncated_tail(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        conn.execute(sa.delete(audit_records).where(audit_records.c.seq >= 44))
    report = trail.verify()
    assert report.first_bad_seq == 44
    assert Problem.TRUNCATED in _problems(report)


def test_a_truncated_tail_with_head_and_checkpoints_cleaned_up(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        conn.execute(sa.delete(audit_records).where(audit_records.c.seq >= 44))
        conn.execute(sa.delete(audit_checkpoints).where(audit_checkpoints.c.size > 44))
        _rehash(conn, 44)  # a head consistent with the 44 records left
    report = trail.verify()
    assert report.first_bad_seq == 44
    assert {Problem.TRUNCATED, Problem.CHECKPOINT_DELETED} <= _problems(report)


def test_a_rewritten_and_rehashed_suffix(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        conn.execute(
            sa.update(audit_records).where(audit_records.c.seq >= 33).values(outcome="rewritten")
        )
        _rehash(conn, 33)
    report = trail.verify()
    # Chain and leaves are consistent again; the signed checkpoint of 35 is not. The
    # last matching checkpoint is 25, so record 25 is the first one nothing vouches for.
    assert report.first_bad_seq == 25
    assert _problems(report) == {Problem.REWRITTEN}


def test_deleted_checkpoints_are_caught_by_the_outside_copies(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        conn.execute(sa.delete(audit_checkpoints))
    report = trail.verify()
    deleted = [f for f in report.findings if f.problem is Problem.CHECKPOINT_DELETED]
    assert len(deleted) == 6
    assert not report.ok


def test_a_checkpoint_edited_in_the_database_is_invalid(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        note = conn.execute(
            sa.select(audit_checkpoints.c.note).where(audit_checkpoints.c.size == 25)
        ).scalar_one()
        conn.execute(
            sa.update(audit_checkpoints)
            .where(audit_checkpoints.c.size == 25)
            .values(note=note.replace("\n25\n", "\n24\n"))
        )
    assert Problem.CHECKPOINT_INVALID in _problems(trail.verify())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_cli_names_the_first_bad_record(trail: Trail) -> None:
    runner = CliRunner()
    state = str(trail.settings.state_dir)
    url = trail.settings.database_url
    ok = runner.invoke(app, ["audit", "verify", "--state-dir", state, "--database-url", url])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    with trail.engine.begin() as conn:
        conn.execute(
            sa.update(audit_records).where(audit_records.c.seq == 7).values(actor="mallory")
        )
    bad = runner.invoke(
        app, ["audit", "verify", "--state-dir", state, "--database-url", url, "--format", "json"]
    )
    assert bad.exit_code == 1, bad.output
    assert '"first_bad_seq": 7' in bad.output
    note = runner.invoke(app, ["audit", "checkpoint", "--state-dir", state, "--database-url", url])
    assert note.exit_code == 0
    assert note.output.startswith("fedgate.local/audit\n50\n")
