"""Proofs and export manifests an auditor checks offline, trusting only checkpoint keys.

An inclusion bundle holds a record, the tree size, the audit path and the signed
checkpoint of that size; a consistency bundle holds two signed checkpoints and the
proof between them. `check_inclusion` recomputes the record's leaf hash from its
fields (never taking the hash it is given), verifies the checkpoint's signature
and the path to its root. Bundles are plain JSON (`fedgate audit prove --output`).

An export manifest is a signed note (by the log's key) naming an exported file's
SHA-256, its record count and format, and the checkpoint covering the records:

    <origin> export v1\\n
    sha256 <hex>\\n
    records <count>\\n
    format <jsonl|csv>\\n
    checkpoint <size> <base64 root>\\n
    created <RFC 3339 time>\\n
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.core.audit_record import (
    AuditRecord,
    format_time,
    leaf_hash_of,
    parse_time,
    record_from_json,
    record_to_json,
)
from gateway.core.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from gateway.core.merkle import ProofError, verify_consistency, verify_inclusion
from gateway.core.signed_note import NoteError, NoteSigner, NoteVerifier, open_note, sign_note


class ProofCheckFailed(ValueError):
    """A proof, bundle or manifest does not hold."""


@dataclass(frozen=True, slots=True)
class InclusionBundle:
    """A record and the proof that a signed checkpoint's tree contains it."""

    record: AuditRecord
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint_note: str

    def to_json(self) -> dict[str, Any]:
        """The bundle as JSON-ready data."""
        return {
            "type": "inclusion",
            "record": record_to_json(self.record),
            "tree_size": self.tree_size,
            "proof": [h.hex() for h in self.hashes],
            "checkpoint": self.checkpoint_note,
        }


@dataclass(frozen=True, slots=True)
class ConsistencyBundle:
    """Two signed checkpoints and the proof that the first log is a prefix of the second."""

    old_note: str
    new_note: str
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """The bundle as JSON-ready data."""
        return {
            "type": "consistency",
            "old_checkpoint": self.old_note,
            "new_checkpoint": self.new_note,
            "proof": [h.hex() for h in self.hashes],
        }


def bundle_from_json(value: Mapping[str, Any]) -> InclusionBundle | ConsistencyBundle:
    """Reads a bundle written by `to_json`.

    Raises:
        ProofCheckFailed: It is not a bundle.
    """
    try:
        hashes = tuple(bytes.fromhex(h) for h in value["proof"])
        if value["type"] == "inclusion":
            return InclusionBundle(
                record_from_json(value["record"]),
                int(value["tree_size"]),
                hashes,
                str(value["checkpoint"]),
            )
        if value["type"] == "consistency":
            return ConsistencyBundle(
                str(value["old_checkpoint"]), str(value["new_checkpoint"]), hashes
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofCheckFailed(f"not a proof bundle: {exc}") from exc
    raise ProofCheckFailed(f"unknown bundle type {value.get('type')!r}")


def _checkpoint(note: str, verifiers: Sequence[NoteVerifier], origin: str | None) -> Checkpoint:
    try:
        return open_checkpoint(note, verifiers, origin=origin)
    except CheckpointError as exc:
        raise ProofCheckFailed(f"checkpoint: {exc}") from exc


def check_inclusion(
    bundle: InclusionBundle, verifiers: Sequence[NoteVerifier], origin: str | None = None
) -> Checkpoint:
    """Checks that the bundle's record is in the log its signed checkpoint commits to.

    Returns:
        The checkpoint the record was proven against.

    Raises:
        ProofCheckFailed: The signature, the record's hash or the path does not hold.
    """
    checkpoint = _checkpoint(bundle.checkpoint_note, verifiers, origin)
    if checkpoint.size != bundle.tree_size:
        raise ProofCheckFailed(
            f"the proof is for size {bundle.tree_size}, the checkpoint for {checkpoint.size}"
        )
    leaf = leaf_hash_of(bundle.record)
    if bundle.record.leaf_hash and bundle.record.leaf_hash != leaf:
        raise ProofCheckFailed("the record's fields do not give its leaf hash")
    try:
        verify_inclusion(
            bundle.record.seq, bundle.tree_size, leaf, bundle.hashes, checkpoint.root_hash
        )
    except ProofError as exc:
        raise ProofCheckFailed(str(exc)) from exc
    return checkpoint


def check_consistency(
    bundle: ConsistencyBundle, verifiers: Sequence[NoteVerifier], origin: str | None = None
) -> tuple[Checkpoint, Checkpoint]:
    """Checks that the older signed checkpoint's log is a prefix of the newer one's.

    Raises:
        ProofCheckFailed: A signature or the proof does not hold.
    """
    old = _checkpoint(bundle.old_note, verifiers, origin)
    new = _checkpoint(bundle.new_note, verifiers, origin)
    if old.origin != new.origin:
        raise ProofCheckFailed("the checkpoints are of different logs")
    try:
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, bundle.hashes)
    except ProofError as exc:
        raise ProofCheckFailed(str(exc)) from exc
    return old, new


# --- export manifests ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportManifest:
    """What a signed export manifest states."""

    origin: str
    sha256: bytes
    records: int
    format: str
    checkpoint_size: int
    checkpoint_root: bytes
    created: datetime

    @property
    def body(self) -> str:
        """The manifest's note text."""
        root = base64.b64encode(self.checkpoint_root).decode()
        return (
            f"{self.origin} export v1\n"
            f"sha256 {self.sha256.hex()}\n"
            f"records {self.records}\n"
            f"format {self.format}\n"
            f"checkpoint {self.checkpoint_size} {root}\n"
            f"created {format_time(self.created)}\n"
        )

    def sign(self, signer: NoteSigner) -> str:
        """The manifest as a signed note."""
        return sign_note(self.body, [signer])

    @classmethod
    def parse(cls, body: str) -> ExportManifest:
        """Reads a manifest's note text.

        Raises:
            ProofCheckFailed: It is not a manifest.
        """
        lines = body.split("\n")
        try:
            head, digest, records, fmt, checkpoint, created, tail = lines
            origin, _, version = head.rpartition(" export ")
            _, size, root = checkpoint.split(" ")
            if version != "v1" or tail or not origin:
                raise ValueError("not an export manifest v1")
            return cls(
                origin=origin,
                sha256=bytes.fromhex(digest.removeprefix("sha256 ")),
                records=int(records.removeprefix("records ")),
                format=fmt.removeprefix("format "),
                checkpoint_size=int(size),
                checkpoint_root=base64.b64decode(root, validate=True),
                created=parse_time(created.removeprefix("created ")),
            )
        except ValueError as exc:
            raise ProofCheckFailed(f"not an export manifest: {exc}") from exc


def check_export(
    data: bytes,
    manifest_note: str,
    verifiers: Sequence[NoteVerifier],
    checkpoints: Iterable[str] = (),
) -> ExportManifest:
    """Checks an exported file against its signed manifest.

    Args:
        data: The exported file's bytes.
        manifest_note: The signed manifest.
        verifiers: Keys the manifest (and checkpoints) must be signed with.
        checkpoints: Signed checkpoints the auditor holds; if one has the manifest's
            size, its root must match the manifest's.

    Raises:
        ProofCheckFailed: The signature, the file hash or a checkpoint does not match.
    """
    try:
        opened = open_note(manifest_note, verifiers)
    except NoteError as exc:
        raise ProofCheckFailed(f"manifest: {exc}") from exc
    manifest = ExportManifest.parse(opened.text)
    if hashlib.sha256(data).digest() != manifest.sha256:
        raise ProofCheckFailed("the file's SHA-256 is not the one the manifest signed")
    for note in checkpoints:
        checkpoint = _checkpoint(note, verifiers, manifest.origin)
        if checkpoint.size == manifest.checkpoint_size and (
            checkpoint.root_hash != manifest.checkpoint_root
        ):
            raise ProofCheckFailed("the manifest's checkpoint disagrees with a signed checkpoint")
    return manifest
