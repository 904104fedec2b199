"""`verify_log`: recompute the whole audit log from the database and check it.

Reads one consistent snapshot (the head row, the stored checkpoints, every record
in position order) and feeds it to `gateway.core.audit_verify.LogVerifier`, with
the checkpoint copies found outside the database. Trusts only the verifier keys
it is given.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.audit.outside import CheckpointDirectory
from gateway.core.audit_log import LogHead, SignedCheckpoint
from gateway.core.audit_record import AuditRecord
from gateway.core.audit_verify import CheckpointNote, LogVerifier, VerifyReport
from gateway.core.signed_note import NoteVerifier
from gateway.store.audit_store import SqlAuditStore


@dataclass(frozen=True, slots=True)
class VerifyRun:
    """A verification's report and how long it took."""

    report: VerifyReport
    seconds: float

    @property
    def records_per_second(self) -> float:
        """Throughput of the run."""
        return self.report.records / self.seconds if self.seconds > 0 else 0.0


def verify_log(
    store: SqlAuditStore,
    verifiers: Iterable[NoteVerifier],
    origin: str,
    outside: Sequence[CheckpointDirectory] = (),
) -> VerifyRun:
    """Recomputes every hash of the log and checks it against the signed checkpoints.

    Args:
        store: The log.
        verifiers: Public keys the checkpoints must be signed with.
        origin: The log's name in its checkpoints.
        outside: Folders with checkpoint copies kept outside the database.

    Raises:
        StoreUnavailable: The database could not be read.
    """
    started = time.perf_counter()
    outside_notes = [note for folder in outside for note in folder.read_all()]
    snapshot = store.snapshot()
    head = next(snapshot)
    stored = next(snapshot)
    assert isinstance(head, LogHead)
    assert isinstance(stored, list)
    verifier = LogVerifier(
        verifiers,
        origin,
        [_note(c) for c in stored],
        outside_notes,
    )
    feed = verifier.feed
    for record in snapshot:
        assert isinstance(record, AuditRecord)
        feed(record)
    report = verifier.finish(head)
    return VerifyRun(report, time.perf_counter() - started)


def _note(checkpoint: SignedCheckpoint) -> CheckpointNote:
    return CheckpointNote(checkpoint.note, f"database (size {checkpoint.size})")
