"""Signed checkpoints copied to a directory outside the database.

Whoever can rewrite the database can delete its checkpoints; the copies here are
what `fedgate audit verify` then checks against. Point the directory at storage
the database's administrators cannot change (another host, a WORM bucket mount, a
witness's inbox) for the copies to be worth more than the database itself.

Files are `<size, 20 digits>.checkpoint`, each one signed note, written atomically
(temporary file, fsync, rename, fsync of the directory) and never rewritten.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from gateway.core.audit_verify import CheckpointNote
from gateway.core.signed_note import NoteVerifier

log = logging.getLogger(__name__)

SUFFIX = ".checkpoint"
KEY_SUFFIX = ".vkey"


class CheckpointDirectory:
    """A folder of signed checkpoint copies."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file_for(self, size: int) -> Path:
        """Where the checkpoint of `size` is kept."""
        return self.path / f"{size:020d}{SUFFIX}"

    def write(self, size: int, note: str) -> Path:
        """Stores the checkpoint of `size` (an existing copy is left as it is).

        Raises:
            OSError: The directory cannot be written.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.file_for(size)
        if target.exists():
            return target
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(note)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        with contextlib.suppress(OSError):  # not every platform can fsync a directory
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return target

    def publish_key(self, verifier: NoteVerifier) -> Path | None:
        """Writes a verifier key as `<key hash>.vkey`, for auditors; None if not writable."""
        target = self.path / f"{verifier.key_hash:08x}{KEY_SUFFIX}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.write_text(verifier.vkey + "\n")
        except OSError as exc:
            log.error("cannot publish the checkpoint key in %s: %s", self.path, exc)
            return None
        return target

    def key_files(self) -> list[Path]:
        """The verifier keys published here."""
        return sorted(self.path.glob(f"*{KEY_SUFFIX}")) if self.path.is_dir() else []

    def read_all(self) -> list[CheckpointNote]:
        """Every stored copy, smallest size first (unreadable files included as text)."""
        if not self.path.is_dir():
            return []
        notes: list[CheckpointNote] = []
        for file in sorted(self.path.glob(f"*{SUFFIX}")):
            try:
                notes.append(CheckpointNote(file.read_text(encoding="utf-8"), str(file)))
            except (OSError, UnicodeDecodeError) as exc:
                notes.append(CheckpointNote(f"unreadable: {exc}", str(file)))
        return notes
