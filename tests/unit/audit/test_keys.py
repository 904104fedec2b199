"""Audit keys in the state folder: created once, owner-only, checked when read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.audit.keys import (
    KeyFileError,
    load_or_create_content_key,
    load_or_create_signer,
    read_verifiers,
)
from gateway.audit.outside import CheckpointDirectory
from gateway.core.signed_note import NoteSigner


def test_the_signer_is_created_once_with_owner_only_access(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit-checkpoint.key"
    signer = load_or_create_signer(path, "fedgate.test/audit")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.with_suffix(".pub").read_text().strip() == signer.verifier.vkey
    again = load_or_create_signer(path, "fedgate.test/audit")
    assert again.verifier == signer.verifier
    assert read_verifiers([path.with_suffix(".pub")]) == [signer.verifier]
    assert read_verifiers([path]) == [signer.verifier]  # a signer file also names its key


def test_a_key_for_another_log_or_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit-checkpoint.key"
    load_or_create_signer(path, "one/audit")
    with pytest.raises(KeyFileError, match="one/audit"):
        load_or_create_signer(path, "other/audit")
    path.write_text("not a key\n")
    with pytest.raises(KeyFileError):
        load_or_create_signer(path, "one/audit")
    bad = tmp_path / "bad.pub"
    bad.write_text("# comment\nname+00000000+AAAA\n")
    with pytest.raises(KeyFileError):
        read_verifiers([bad])
    with pytest.raises(KeyFileError, match="cannot read"):
        read_verifiers([tmp_path / "missing.pub"])


def test_the_content_key_is_random_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit-content.key"
    key = load_or_create_content_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_content_key(path) == key
    assert load_or_create_content_key(tmp_path / "other.key") != key
    path.write_text("zz\n")
    with pytest.raises(KeyFileError):
        load_or_create_content_key(path)


def test_checkpoint_copies_are_written_once_and_read_back(tmp_path: Path) -> None:
    folder = CheckpointDirectory(tmp_path / "checkpoints")
    assert folder.read_all() == []
    first = folder.write(12, "note twelve\n")
    assert first.name == "00000000000000000012.checkpoint"
    folder.write(12, "a different note\n")  # never rewritten
    folder.write(3, "note three\n")
    assert [n.note for n in folder.read_all()] == ["note three\n", "note twelve\n"]
    signer = NoteSigner.generate("x")
    published = folder.publish_key(signer.verifier)
    assert published is not None
    assert folder.key_files() == [published]
    assert list(folder.path.glob("*.tmp*")) == []
