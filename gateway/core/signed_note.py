"""C2SP signed notes with Ed25519 keys (https://c2sp.org/signed-note).

A signed note is a UTF-8 text ending in a newline, a blank line, then one line per
signature:

    <text, ending in \\n>
    \\n
    — <key name> <base64(key hash (4 bytes, big-endian) || Ed25519 signature)>\\n

The key hash is the first four bytes of SHA-256(key name || "\\n" || 0x01 || public
key), 0x01 being the Ed25519 algorithm byte. Keys travel as text: a verifier key
is `<name>+<hash as 8 hex digits>+<base64(0x01 || public key)>` and a signer key
`PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte seed)>`, the formats of
golang.org/x/mod/sumdb/note, so other tools can check our notes.

`open_note` verifies a note against known verifiers and fails unless at least one
known key signed it; signatures by unknown keys are kept aside, unverified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01
"""Signature type byte of Ed25519 keys."""

SIGNATURE_PREFIX = "— "
"""Every signature line starts with an em dash (U+2014) and a space."""

_PRIVATE_PREFIX = "PRIVATE+KEY+"
_MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A note, key or signature is malformed, or the note does not verify."""


def _valid_name(name: str) -> bool:
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() or unicodedata.category(c) == "Zs" for c in name)
    )


def key_hash(name: str, public_key: bytes) -> int:
    """The 32-bit key hash of an Ed25519 key: SHA-256(name || "\\n" || 0x01 || key)[:4]."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if any(c < " " and c != "\n" for c in text):
        raise NoteError("a note's text must not contain control characters other than newline")


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A public key that checks signatures of one key name."""

    name: str
    key_hash: int
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Reads a verifier key `<name>+<hash>+<base64 key>`.

        Raises:
            NoteError: The key is malformed, not Ed25519, or its hash does not match.
        """
        name, _, rest = vkey.strip().partition("+")
        hash_hex, _, key_b64 = rest.partition("+")
        try:
            raw = base64.b64decode(key_b64, validate=True)
            claimed = int(hash_hex, 16)
        except (binascii.Error, ValueError) as exc:
            raise NoteError(f"malformed verifier key {vkey!r}") from exc
        if len(hash_hex) != 8 or not _valid_name(name) or not raw:
            raise NoteError(f"malformed verifier key {vkey!r}")
        if raw[0] != ALG_ED25519 or len(raw) != 33:
            raise NoteError(f"verifier key {name!r} is not an Ed25519 key")
        if key_hash(name, raw[1:]) != claimed:
            raise NoteError(f"verifier key {name!r} does not match its key hash")
        return cls(name, claimed, raw[1:])

    @property
    def vkey(self) -> str:
        """The key as text, for configuration files and other verifiers."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash:08x}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if `signature` is this key's Ed25519 signature of `message`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


class NoteSigner:
    """An Ed25519 private key that signs notes under a key name."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not _valid_name(name):
            raise NoteError(f"invalid key name {name!r}: no spaces or '+'")
        self.name = name
        self._key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = NoteVerifier(name, key_hash(name, public), public)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> NoteSigner:
        """Reads a signer key `PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>`.

        Raises:
            NoteError: The key is malformed or its hash does not match.
        """
        text = skey.strip()
        if not text.startswith(_PRIVATE_PREFIX):
            raise NoteError("a signer key starts with PRIVATE+KEY+")
        name, _, rest = text[len(_PRIVATE_PREFIX) :].partition("+")
        hash_hex, _, key_b64 = rest.partition("+")
        try:
            raw = base64.b64decode(key_b64, validate=True)
            claimed = int(hash_hex, 16)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("malformed signer key") from exc
        if len(hash_hex) != 8 or len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("malformed or non-Ed25519 signer key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier.key_hash != claimed:
            raise NoteError(f"signer key {name!r} does not match its key hash")
        return signer

    @property
    def skey(self) -> str:
        """The private key as text. Keep it secret (the gateway stores it mode 0600)."""
        seed = self._key.private_bytes_raw()
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.verifier.key_hash:08x}+{encoded}"

    def signature_line(self, text: str) -> str:
        """The signature line of this key over `text` (with its trailing newline)."""
        signature = self._key.sign(text.encode())
        blob = self.verifier.key_hash.to_bytes(4, "big") + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """The signed note of `text` by each signer.

    Raises:
        NoteError: The text is not a valid note text, or no signer is given.
    """
    _check_text(text)
    if not signers:
        raise NoteError("a signed note needs at least one signer")
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose signatures were checked."""

    text: str
    verified_by: tuple[NoteVerifier, ...]
    """Known keys whose signature verified (at least one)."""
    unverified: tuple[str, ...]
    """Signature lines by keys that are not known (neither trusted nor rejected)."""


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> OpenedNote:
    """Parses a signed note and verifies the signatures of known keys.

    Args:
        note: The signed note.
        verifiers: The keys to trust.

    Returns:
        The text and who signed it.

    Raises:
        NoteError: The note is malformed, a known key's signature is invalid, or no
            known key signed it.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("a note must be UTF-8") from exc
    if any(c < " " and c != "\n" for c in note):
        raise NoteError("a note must not contain control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a signed note needs a blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("a signed note ends with a signature line and a newline")
    known = {(v.name, v.key_hash): v for v in verifiers}
    verified: dict[tuple[str, int], NoteVerifier] = {}
    unverified: list[str] = []
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {_MAX_SIGNATURES} signatures")
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise NoteError(f"malformed signature line {line!r}") from exc
        if not _valid_name(name) or len(blob) < 5:
            raise NoteError(f"malformed signature line {line!r}")
        ident = (name, int.from_bytes(blob[:4], "big"))
        verifier = known.get(ident)
        if verifier is None:
            if line not in unverified:
                unverified.append(line)
            continue
        if ident in verified:
            continue
        if not verifier.verify(text.encode(), blob[4:]):
            raise NoteError(f"invalid signature by {name!r}")
        verified[ident] = verifier
    if not verified:
        raise NoteError("no known key signed the note")
    return OpenedNote(text, tuple(verified.values()), tuple(unverified))
