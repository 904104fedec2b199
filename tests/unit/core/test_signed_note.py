"""C2SP signed notes and checkpoints, against two real notes (Go checksum database, C2SP)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.core.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from gateway.core.signed_note import (
    NoteError,
    NoteSigner,
    NoteVerifier,
    key_hash,
    open_note,
    sign_note,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "data" / "merkle-vectors.json").read_text()
)


def test_the_c2sp_example_note_verifies() -> None:
    verifier = NoteVerifier.parse(VECTORS["PETER_VKEY"])
    assert verifier.vkey == VECTORS["PETER_VKEY"]
    opened = open_note(VECTORS["PETER_NOTE"], [verifier])
    assert opened.text == VECTORS["PETER_TEXT"]
    assert opened.verified_by == (verifier,)
    assert opened.unverified == ()


def test_the_go_checksum_database_checkpoint_verifies() -> None:
    verifier = NoteVerifier.parse(VECTORS["GO_SUMDB_VKEY"])
    checkpoint = open_checkpoint(
        VECTORS["GO_SUMDB_NOTE"], [verifier], origin="go.sum database tree"
    )
    assert checkpoint.size == 6476701
    assert base64.b64encode(checkpoint.root_hash).decode() == (
        "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
    )
    assert Checkpoint.parse(checkpoint.body) == checkpoint


def test_key_hash_is_the_first_four_bytes_of_the_key_digest() -> None:
    verifier = NoteVerifier.parse(VECTORS["PETER_VKEY"])
    assert key_hash(verifier.name, verifier.public_key) == 0xC74F20A3


@pytest.mark.parametrize(
    "tamper",
    [
        lambda n: n.replace("cryptography", "Cryptography", 1),
        lambda n: n.replace("problem,", "problem;", 1),
        lambda n: n.replace("x08go", "x08gp", 1),
        lambda n: n.replace("\n\n", "\n \n", 1),
        lambda n: n.rstrip("\n"),
        lambda n: n.replace("— ", "-- ", 1),
        lambda n: n.replace("PeterNeumann x", "PeterNeumann  x", 1),
        lambda n: n.replace("you", "you\x07", 1),
    ],
)
def test_tampered_notes_do_not_open(tamper: Any) -> None:
    verifier = NoteVerifier.parse(VECTORS["PETER_VKEY"])
    with pytest.raises(NoteError):
        open_note(tamper(VECTORS["PETER_NOTE"]), [verifier])


def test_a_note_by_unknown_keys_only_does_not_open() -> None:
    other = NoteSigner.generate("PeterNeumann")
    with pytest.raises(NoteError, match="no known key"):
        open_note(VECTORS["PETER_NOTE"], [other.verifier])
    with pytest.raises(NoteError, match="no known key"):
        open_note(VECTORS["PETER_NOTE"], [])


def test_sign_and_open_with_several_keys() -> None:
    first, second = NoteSigner.generate("fedgate.test/audit"), NoteSigner.generate("witness")
    note = sign_note("hello\nworld\n", [first, second])
    lines = note.split("\n")
    assert lines[:3] == ["hello", "world", ""]
    assert lines[3].startswith("— fedgate.test/audit ")
    assert lines[4].startswith("— witness ")
    opened = open_note(note, [first.verifier])
    assert opened.text == "hello\nworld\n"
    assert opened.verified_by == (first.verifier,)
    assert len(opened.unverified) == 1
    assert "witness" in opened.unverified[0]
    both = open_note(note.encode(), [first.verifier, second.verifier])
    assert {v.name for v in both.verified_by} == {"fedgate.test/audit", "witness"}


def test_a_signature_by_a_known_key_over_other_text_is_an_error() -> None:
    signer = NoteSigner.generate("k")
    forged = "other\n\n" + signer.signature_line("text\n")
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(forged, [signer.verifier])


def test_signer_and_verifier_keys_round_trip_as_text() -> None:
    signer = NoteSigner.generate("fedgate.example/audit")
    again = NoteSigner.parse(signer.skey)
    assert again.verifier == signer.verifier
    assert NoteVerifier.parse(signer.verifier.vkey) == signer.verifier
    assert signer.skey.startswith("PRIVATE+KEY+fedgate.example/audit+")
    note = sign_note("x\n", [again])
    assert open_note(note, [signer.verifier]).text == "x\n"


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "name",
        "name+c74f20a3",
        "name+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ApRc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+not base64",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.parse(vkey)


def test_note_text_rules() -> None:
    signer = NoteSigner.generate("k")
    with pytest.raises(NoteError, match="newline"):
        sign_note("no newline", [signer])
    with pytest.raises(NoteError, match="control"):
        sign_note("tab\there\n", [signer])
    with pytest.raises(NoteError, match="signer"):
        sign_note("x\n", [])
    with pytest.raises(NoteError):
        NoteSigner.generate("has space")


def test_checkpoint_body_and_signature() -> None:
    signer = NoteSigner.generate("fedgate.test/audit")
    checkpoint = Checkpoint("fedgate.test/audit", 1000, bytes(range(32)))
    assert checkpoint.body == (
        "fedgate.test/audit\n1000\n" + base64.b64encode(bytes(range(32))).decode() + "\n"
    )
    note = checkpoint.sign([signer])
    assert open_checkpoint(note, [signer.verifier]) == checkpoint
    with pytest.raises(CheckpointError, match="expected"):
        open_checkpoint(note, [signer.verifier], origin="other")
    with pytest.raises(CheckpointError):
        open_checkpoint(note.replace("\n1000\n", "\n1001\n"), [signer.verifier])


@pytest.mark.parametrize(
    "body",
    [
        "origin\n10\n",
        "origin\n010\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n10\nAAAA\n",
        "origin\n10\nnot base64!\n",
        "origin\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)


def test_checkpoint_extension_lines_are_kept() -> None:
    body = "origin\n3\n" + base64.b64encode(bytes(32)).decode() + "\nwitnessed-by x\n"
    assert Checkpoint.parse(body).extensions == ("witnessed-by x",)
    assert Checkpoint.parse(body).body == body
