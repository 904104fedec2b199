"""Log checkpoints in the C2SP tlog-checkpoint text format (https://c2sp.org/tlog-checkpoint).

A checkpoint commits to the whole log at one size; signed as a C2SP note it lets
anyone holding the public key check the log later:

    <origin>\\n             unique name of the log, e.g. fedgate.example.com/audit
    <size>\\n               number of records, decimal, no leading zeros
    <base64 root hash>\\n   RFC 6962 Merkle tree hash over the first <size> leaves
    [extension lines]      optional, non-empty lines (this gateway writes none)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.core.merkle import HASH_SIZE
from gateway.core.signed_note import NoteError, NoteSigner, NoteVerifier, open_note, sign_note


class CheckpointError(ValueError):
    """A checkpoint is malformed or its signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The size and root hash of a log, as signed."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("a checkpoint's origin is one non-empty line")
        if self.size < 0:
            raise CheckpointError("a checkpoint's size is not negative")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError("a checkpoint's root hash is 32 bytes")
        if any(not line or "\n" in line for line in self.extensions):
            raise CheckpointError("extension lines are non-empty single lines")

    @property
    def body(self) -> str:
        """The checkpoint text, the part a signature covers."""
        root = base64.b64encode(self.root_hash).decode()
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Reads a checkpoint text (without signatures).

        Raises:
            CheckpointError: The text is not a checkpoint.
        """
        if not body.endswith("\n"):
            raise CheckpointError("a checkpoint ends with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("a checkpoint has an origin, a size and a root hash")
        origin, size_text, root_text, *extensions = lines
        if (
            not size_text.isdigit()
            or not size_text.isascii()
            or (size_text != "0" and size_text.startswith("0"))
        ):
            raise CheckpointError(f"checkpoint size {size_text!r} is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error as exc:
            raise CheckpointError("a checkpoint's root hash is base64") from exc
        return cls(origin, int(size_text), root, tuple(extensions))

    def sign(self, signers: Sequence[NoteSigner]) -> str:
        """The checkpoint as a signed note."""
        return sign_note(self.body, signers)


def open_checkpoint(
    note: str | bytes, verifiers: Iterable[NoteVerifier], *, origin: str | None = None
) -> Checkpoint:
    """Verifies a signed checkpoint and reads it.

    Args:
        note: The signed note.
        verifiers: Keys to trust; at least one must have signed.
        origin: When given, the checkpoint must be of this log.

    Raises:
        CheckpointError: The note does not verify, is not a checkpoint, or is of
            another log.
    """
    try:
        opened = open_note(note, verifiers)
    except NoteError as exc:
        raise CheckpointError(str(exc)) from exc
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint of log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint
