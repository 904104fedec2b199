"""Keys of the audit trail, kept in the state folder and never in the database.

    <state_dir>/audit-checkpoint.key   the Ed25519 signer key (C2SP text form), mode 0600
    <state_dir>/audit-checkpoint.pub   its verifier key, for auditors
    <state_dir>/audit-content.key      32 random bytes (hex) salting context content hashes

Each is created at first start. Replicas of one federation each have their own
checkpoint key (verification trusts every key it is given) but must share the
content key, or equal values would hash differently on different replicas.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from gateway.core.signed_note import NoteError, NoteSigner, NoteVerifier

log = logging.getLogger(__name__)

SIGNER_FILE = "audit-checkpoint.key"
VERIFIER_FILE = "audit-checkpoint.pub"
CONTENT_KEY_FILE = "audit-content.key"


class KeyFileError(Exception):
    """A key file exists but cannot be used."""


def _create_secret_file(path: Path, text: str) -> bool:
    """Writes `text` to a new file readable only by its owner; False if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _read_secret_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by others (mode %o); it should be 0600", path, mode & 0o777)
    return path.read_text()


def load_or_create_signer(path: Path, name: str) -> NoteSigner:
    """The checkpoint signer stored at `path`, created (mode 0600) if there is none.

    The verifier key is written next to it (`.pub`). A key made under another name
    is refused: checkpoints name their log.

    Raises:
        KeyFileError: The file is not a signer key, or signs for another name.
    """
    signer = NoteSigner.generate(name)
    if _create_secret_file(path, signer.skey + "\n"):
        log.info("created the audit checkpoint key %s (%s)", path, signer.verifier.vkey)
    else:
        try:
            signer = NoteSigner.parse(_read_secret_file(path))
        except NoteError as exc:
            raise KeyFileError(f"{path}: {exc}") from exc
        if signer.name != name:
            raise KeyFileError(
                f"{path} signs for {signer.name!r}, but the audit log is named {name!r}"
            )
    public = path.with_suffix(".pub")
    if not public.exists() or public.read_text().strip() != signer.verifier.vkey:
        public.write_text(signer.verifier.vkey + "\n")
    return signer


def read_verifiers(paths: list[Path]) -> list[NoteVerifier]:
    """Verifier keys from files (one key per line; `#` comments) or `.key` signer files.

    Raises:
        KeyFileError: A file cannot be read or holds no valid key.
    """
    verifiers: list[NoteVerifier] = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError as exc:
            raise KeyFileError(f"cannot read {path}: {exc.strerror}") from exc
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                if line.startswith("PRIVATE+KEY+"):
                    verifiers.append(NoteSigner.parse(line).verifier)
                else:
                    verifiers.append(NoteVerifier.parse(line))
            except NoteError as exc:
                raise KeyFileError(f"{path}: {exc}") from exc
    return verifiers


def load_or_create_content_key(path: Path) -> bytes:
    """The secret that salts content hashes, created (mode 0600) if there is none.

    Raises:
        KeyFileError: The file does not hold 32 bytes in hex.
    """
    _create_secret_file(path, secrets.token_hex(32) + "\n")
    try:
        key = bytes.fromhex(_read_secret_file(path).strip())
    except ValueError as exc:
        raise KeyFileError(f"{path} does not hold a hex key") from exc
    if len(key) < 16:
        raise KeyFileError(f"{path} holds a key shorter than 16 bytes")
    return key
