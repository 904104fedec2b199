"""One party's TLS material: its certificate and key, and the CA it trusts.

A certificates folder (see `gateway.identity.dev_ca`) holds one CA and one
certificate per party, named after the party:

    DIR/ca.pem, DIR/<party>.pem, DIR/<party>-key.pem     party: gateway, cli, risk, ...

`Credentials.load(DIR, party)` reads and checks them, so a bad setup fails at
start-up with one line that says how to fix it, not at the first handshake.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.identity.errors import InvalidCertificate, MissingCredentials
from gateway.identity.spiffe import SCHEME, SpiffeId

CERTS_ENV = "FEDGATE_CERTS"
"""Environment variable naming the certificates folder of the CLI, SDK and domains."""
INSECURE_ENV = "FEDGATE_INSECURE"
"""Environment variable that, set to 1/true/yes, puts the CLI, SDK and domains in insecure
mode when no credentials are given explicitly (local experiments and tests only)."""
DEFAULT_CERTS_DIR = Path(".fedgate") / "certs"
"""Certificates folder when neither a flag nor `FEDGATE_CERTS` names one."""
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
GATEWAY = "gateway"
"""Party name of the gateway's own certificate (`DIR/gateway.pem`)."""
RESERVED_NAMES = frozenset({"ca", GATEWAY})
"""File stems that are not domain names (their files would collide)."""


def default_certs_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$FEDGATE_CERTS` if set, else `.fedgate/certs` (where `fedgate certs init` writes)."""
    value = (os.environ if environ is None else environ).get(CERTS_ENV, "")
    return Path(value) if value else DEFAULT_CERTS_DIR


def insecure_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True if `$FEDGATE_INSECURE` asks for insecure mode."""
    value = (os.environ if environ is None else environ).get(INSECURE_ENV, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def cert_file(directory: Path, party: str) -> Path:
    """`DIR/<party>.pem`."""
    return directory / f"{party}.pem"


def key_file(directory: Path, party: str) -> Path:
    """`DIR/<party>-key.pem`."""
    return directory / f"{party}-key.pem"


def setup_hint(directory: Path, party: str) -> str:
    """The commands that create `party`'s certificate in `directory`."""
    issue = "--gateway" if party == GATEWAY else f"--domain {party}"
    steps = [] if (directory / CA_FILE).exists() else [f"fedgate certs init --dir {directory}"]
    steps.append(f"fedgate certs issue {issue} --dir {directory}")
    return " && ".join(steps)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A party's certificate chain and private key (PEM) and the CA certificate it trusts.

    The same credentials serve both directions: as server certificate (gateway,
    domain orchestrator) and as client certificate (every call a party makes).
    """

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    identity: SpiffeId
    """The SPIFFE ID the certificate proves."""

    @property
    def trust_domain(self) -> str:
        """The trust domain of this party's identity."""
        return self.identity.trust_domain

    @property
    def dns_names(self) -> tuple[str, ...]:
        """The DNS names in the certificate's subject alternative names."""
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return ()
        return tuple(sans.value.get_values_for_type(x509.DNSName))

    @classmethod
    def load(cls, directory: Path, party: str) -> Credentials:
        """Loads `DIR/ca.pem`, `DIR/<party>.pem` and `DIR/<party>-key.pem`.

        Raises:
            MissingCredentials: A file is missing (the message says how to create it).
            InvalidCertificate: The files do not fit together or the certificate expired.
        """
        missing = [
            p
            for p in (directory / CA_FILE, cert_file(directory, party), key_file(directory, party))
            if not p.is_file()
        ]
        if missing:
            raise MissingCredentials(
                f"no certificate for {party!r} in {directory} (missing {missing[0].name}); "
                f"create it with: {setup_hint(directory, party)}"
            )
        return cls.from_files(
            ca=directory / CA_FILE,
            cert=cert_file(directory, party),
            key=key_file(directory, party),
        )

    @classmethod
    def from_files(cls, *, ca: Path, cert: Path, key: Path) -> Credentials:
        """Loads and checks explicit CA, certificate and key files."""
        try:
            return cls.from_pem(ca.read_bytes(), cert.read_bytes(), key.read_bytes(), source=cert)
        except FileNotFoundError as exc:
            raise MissingCredentials(f"{exc.filename}: no such file") from None

    @classmethod
    def from_pem(
        cls, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, *, source: object = "certificate"
    ) -> Credentials:
        """Checks that the certificate is current, issued by the CA and matches the key."""
        ca = _load_cert(ca_pem, f"CA of {source}")
        cert = _load_cert(cert_pem, source)
        key = _load_key(key_pem, source)
        now = datetime.now(UTC)
        for which, c in (("CA certificate", ca), (str(source), cert)):
            if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
                raise InvalidCertificate(
                    f"{which} is not valid now (valid {c.not_valid_before_utc:%Y-%m-%d} to "
                    f"{c.not_valid_after_utc:%Y-%m-%d}); issue a new one"
                )
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            raise InvalidCertificate(
                f"{source} was not issued by the CA next to it; issue it again from this CA"
            ) from None
        if key.public_key() != cert.public_key():
            raise InvalidCertificate(f"the private key does not belong to {source}")
        return cls(ca_pem, cert_pem, key_pem, spiffe_id_of(cert, source))


def spiffe_id_of(cert: x509.Certificate, source: object = "certificate") -> SpiffeId:
    """The one SPIFFE ID in a certificate's URI SANs.

    Raises:
        InvalidCertificate: None or more than one.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        uris: list[str] = []
    else:
        uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    ids = [u for u in uris if u.startswith(SCHEME)]
    if len(ids) != 1:
        raise InvalidCertificate(
            f"{source} must name exactly one SPIFFE ID in its URI SANs, found {len(ids)}"
        )
    try:
        return SpiffeId.parse(ids[0])
    except ValueError as exc:
        raise InvalidCertificate(f"{source}: {exc}") from None


def _load_cert(pem: bytes, source: object) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise InvalidCertificate(f"{source} is not a PEM certificate") from None


def _load_key(pem: bytes, source: object) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise InvalidCertificate(
            f"the key of {source} is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        # gRPC's TLS (BoringSSL) handles EC and RSA certificates; Ed25519 is not offered.
        raise InvalidCertificate(f"the key of {source} must be an EC (P-256) or RSA key")
    return key
