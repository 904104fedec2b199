"""Verifying the audit log from scratch: every record, the chain, the tree, the checkpoints.

`LogVerifier` trusts nothing it is given except the checkpoint public keys. It
recomputes each record's canonical form and leaf hash from the stored fields,
the hash chain from the recomputed leaves, and the Merkle root at every size a
signed checkpoint names (from the database and from the copies kept outside it).
It names the first bad record for each kind of tampering:

=========================  =====================================================
tampering                  how it shows
=========================  =====================================================
edited field               the record's contents no longer give its leaf hash
deleted record             a gap in the positions, or (renumbered) a moved record
inserted record            a later record's chain links past it
reordered records          a record's contents name another position
truncated tail             the head or a checkpoint counts more records
rewritten + rehashed       a signed checkpoint's root no longer matches: the
suffix                     first record after the last matching checkpoint
deleted checkpoints        an outside copy has no database row
=========================  =====================================================

What it cannot see: records after the newest checkpoint that were cut or rewritten
together with the head row (nothing signed covers them yet); and anything done by
someone who holds the checkpoint signing key and can rewrite every outside copy.
"""

from __future__ import annotations

import enum
import hashlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.core.audit_log import LogHead
from gateway.core.audit_record import GENESIS_CHAIN, AuditRecord, canonical_form_of, format_time
from gateway.core.checkpoint import CheckpointError, open_checkpoint
from gateway.core.merkle import MerkleFrontier
from gateway.core.signed_note import NoteVerifier

MAX_FINDINGS = 100
"""Findings kept in a report; verification goes on to the end regardless."""

_LINK_WINDOW = 16
# How far back a broken chain link is searched for an earlier record it links to
# (records inserted in between).


class Problem(enum.StrEnum):
    """Kinds of findings."""

    EDITED = "edited"
    MISSING = "missing"
    INSERTED = "inserted"
    CHAIN_BROKEN = "chain-broken"
    TRUNCATED = "truncated"
    REWRITTEN = "rewritten"
    CHECKPOINT_DELETED = "checkpoint-deleted"
    CHECKPOINT_INVALID = "checkpoint-invalid"
    CHECKPOINT_CONFLICT = "checkpoint-conflict"
    HEAD_MISMATCH = "head-mismatch"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with the log."""

    problem: Problem
    seq: int | None
    """The first record that cannot be trusted because of it (None: not a record)."""
    message: str


@dataclass(frozen=True, slots=True)
class CheckpointNote:
    """A signed checkpoint and where it was found."""

    note: str
    source: str
    """`database` or the path of the outside copy."""


@dataclass(slots=True)
class VerifyReport:
    """What verification found."""

    records: int = 0
    head_size: int | None = None
    checkpoints: int = 0
    """Distinct signed checkpoint sizes checked against the log."""
    outside_checkpoints: int = 0
    newest_checkpoint: int = 0
    """Size of the newest valid checkpoint (0 if none)."""
    root_hash: bytes = b""
    findings: list[Finding] = field(default_factory=list)
    dropped_findings: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings and not self.dropped_findings

    @property
    def first_bad_seq(self) -> int | None:
        """The lowest record position any finding names."""
        seqs = [f.seq for f in self.findings if f.seq is not None]
        return min(seqs) if seqs else None

    @property
    def unsigned_records(self) -> int:
        """Records after the newest checkpoint: verified, but nothing signed vouches for them."""
        return max(0, self.records - self.newest_checkpoint)


class LogVerifier:
    """Checks a log fed to it record by record, in position order.

    Args:
        verifiers: The public keys checkpoints must be signed with.
        origin: The log's name in its checkpoints.
        database_checkpoints: Signed checkpoints stored with the log.
        outside_checkpoints: Copies kept outside the database.
    """

    def __init__(
        self,
        verifiers: Iterable[NoteVerifier],
        origin: str,
        database_checkpoints: Iterable[CheckpointNote] = (),
        outside_checkpoints: Iterable[CheckpointNote] = (),
    ) -> None:
        self.report = VerifyReport()
        self._verifiers = tuple(verifiers)
        self._origin = origin
        self._roots: dict[int, tuple[bytes, str]] = {}
        self._next = 0
        self._chain = GENESIS_CHAIN
        self._recent: deque[bytes] = deque(maxlen=_LINK_WINDOW)
        self._frontier = MerkleFrontier()
        self._log_time: datetime | None = None
        self._log_time_text = ""
        self._last_good_checkpoint = 0
        self._first_bad_record: int | None = None
        # Lowest position a record-level finding named: checkpoints and the head
        # past it cannot match, and add nothing by saying so.
        database_sizes = self._load(database_checkpoints)
        outside_sizes = self._load(outside_checkpoints)
        self.report.outside_checkpoints = len(outside_sizes)
        for size in sorted(outside_sizes - database_sizes):
            self._add(
                Problem.CHECKPOINT_DELETED,
                None,
                f"checkpoint of size {size} is missing from the database "
                f"(an outside copy has it: {self._roots[size][1]})",
            )

    def _add(self, problem: Problem, seq: int | None, message: str) -> None:
        if seq is not None and (self._first_bad_record is None or seq < self._first_bad_record):
            self._first_bad_record = seq
        if len(self.report.findings) < MAX_FINDINGS:
            self.report.findings.append(Finding(problem, seq, message))
        else:
            self.report.dropped_findings += 1

    def _load(self, notes: Iterable[CheckpointNote]) -> set[int]:
        sizes: set[int] = set()
        for item in notes:
            try:
                checkpoint = open_checkpoint(item.note, self._verifiers, origin=self._origin)
            except CheckpointError as exc:
                self._add(Problem.CHECKPOINT_INVALID, None, f"checkpoint in {item.source}: {exc}")
                continue
            sizes.add(checkpoint.size)
            known = self._roots.get(checkpoint.size)
            if known is None:
                self._roots[checkpoint.size] = (checkpoint.root_hash, item.source)
            elif known[0] != checkpoint.root_hash:
                self._add(
                    Problem.CHECKPOINT_CONFLICT,
                    None,
                    f"two signed checkpoints of size {checkpoint.size} disagree "
                    f"({known[1]} and {item.source}): the log was forked",
                )
        return sizes

    def feed(self, record: AuditRecord) -> None:
        """Checks the next record (records must come in position order)."""
        seq = record.seq
        after_gap = False
        if seq != self._next:
            if seq > self._next:
                self._add(
                    Problem.MISSING,
                    self._next,
                    f"records {_span(self._next, seq)} are missing (deleted)",
                )
                after_gap = True
            else:
                self._add(Problem.INSERTED, seq, f"record {seq} appears twice")
            # The tree and chain go on over what is there; later checkpoints will
            # not match, and say so.
        # A group commit gives its records one log time: format it once per run.
        if record.log_time != self._log_time:
            self._log_time = record.log_time
            self._log_time_text = format_time(record.log_time)
        form = canonical_form_of(record, seq, self._log_time_text)
        leaf = hashlib.sha256(b"\x00" + form).digest()
        edited = leaf != record.leaf_hash
        if edited:
            self._add(
                Problem.EDITED,
                seq,
                f"record {seq} does not hash to its leaf hash: its fields were changed, "
                "or it was moved from another position",
            )
        linked = hashlib.sha256(self._chain + record.leaf_hash).digest() == record.chain_hash
        if not linked and not after_gap:
            self._broken_link(record, edited)
        self._recent.append(self._chain)
        # Go on from what is stored, so one bad record is reported once, not again
        # for every record after it.
        self._chain = record.chain_hash
        self._frontier.append(leaf)
        self._next = seq + 1
        self.report.records += 1
        root = self._roots.get(self._frontier.size)
        if root is not None:
            self._check_checkpoint(self._frontier.size, root[0], root[1])

    def _broken_link(self, record: AuditRecord, edited: bool) -> None:
        seq = record.seq
        recent = list(self._recent)
        for back, earlier in enumerate(reversed(recent), start=1):
            if hashlib.sha256(earlier + record.leaf_hash).digest() == record.chain_hash:
                first = seq - back
                self._add(
                    Problem.INSERTED,
                    first,
                    f"record {seq} was chained right after record {first - 1}: "
                    f"records {_span(first, seq)} were inserted",
                )
                return
        if edited:
            return  # a moved record: reported as such
        self._add(
            Problem.CHAIN_BROKEN,
            max(seq - 1, 0),
            f"record {seq} does not link to record {seq - 1}: "
            f"record {seq - 1} was rewritten with its hashes, or records before {seq} "
            "were deleted and the rest renumbered",
        )

    def _check_checkpoint(self, size: int, root: bytes, source: str) -> None:
        self.report.checkpoints += 1
        if self._frontier.root() == root:
            self.report.newest_checkpoint = size
            self._last_good_checkpoint = size
            return
        if self._first_bad_record is not None and self._first_bad_record < size:
            return  # explained by the records already named
        first = self._last_good_checkpoint
        self._add(
            Problem.REWRITTEN,
            first,
            f"the signed checkpoint of size {size} ({source}) does not match the log: "
            f"records {_span(first, size)} are not the ones it signed "
            f"(the first changed record is at or after {first})",
        )

    def finish(self, head: LogHead | None) -> VerifyReport:
        """Checks the end of the log against the head row and every checkpoint size."""
        report = self.report
        size = self._frontier.size
        report.root_hash = self._frontier.root()
        report.head_size = None if head is None else head.size
        for checkpoint_size in sorted(s for s in self._roots if s > size):
            report.checkpoints += 1
            self._add(
                Problem.TRUNCATED,
                size,
                f"the signed checkpoint of size {checkpoint_size} "
                f"({self._roots[checkpoint_size][1]}) counts records "
                f"{_span(size, checkpoint_size)}, which are gone (truncated)",
            )
        if head is None:
            return report
        if head.size > size:
            self._add(
                Problem.TRUNCATED,
                size,
                f"the log's head counts {head.size} records but only {size} are there: "
                f"records {_span(size, head.size)} are gone (truncated)",
            )
        elif head.size < size:
            self._add(
                Problem.INSERTED,
                head.size,
                f"records {_span(head.size, size)} lie beyond the log's head "
                f"({head.size} records): they were added outside the writer",
            )
        elif self._first_bad_record is None and (
            head.chain_hash != self._chain or head.root() != report.root_hash
        ):
            self._add(
                Problem.HEAD_MISMATCH,
                max(size - 1, 0),
                "the log's head does not match its last record (hashes differ)",
            )
        return report


def _span(first: int, end: int) -> str:
    """`first..end-1` as text."""
    return str(first) if end - first == 1 else f"{first}..{end - 1}"
