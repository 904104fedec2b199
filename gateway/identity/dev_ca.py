"""A development certificate authority: one CA per federation, one certificate per party.

For laptops, the demo and tests. Production deployments issue the same shape of
certificates from their own PKI (SPIRE, cert-manager, a corporate CA): one URI SAN
`spiffe://<trust-domain>/...` per certificate, as `gateway.identity.spiffe` says.

Folder layout (`fedgate certs init --dir DIR`, `fedgate certs issue ... --dir DIR`):

    DIR/ca.pem               CA certificate: the trust anchor every party loads
    DIR/ca-key.pem           CA private key (0600): only `fedgate certs issue` reads it
    DIR/gateway.pem          the gateway's certificate, URI SAN spiffe://<td>/gateway,
                             DNS SAN gateway.<td> (the name clients verify)
    DIR/gateway-key.pem      its private key (0600)
    DIR/<name>.pem           domain <name>'s certificate, URI SAN spiffe://<td>/domain/<name>,
                             DNS SAN <name>.domain.<td>; server and client certificate
    DIR/<name>-key.pem       its private key (0600)

Every leaf certificate also names `localhost`, 127.0.0.1 and ::1 so parties reach
each other on loopback with ordinary host name checks. Keys are EC P-256, which
gRPC's TLS stack (BoringSSL) supports everywhere; Ed25519 certificates it does not.
Private keys are written with mode 0600 (atomically, never readable in between).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.core.names import check_name
from gateway.errors import InvalidRequest
from gateway.identity.credentials import (
    CA_FILE,
    CA_KEY_FILE,
    GATEWAY,
    RESERVED_NAMES,
    cert_file,
    key_file,
    spiffe_id_of,
)
from gateway.identity.errors import IdentityError, InvalidCertificate, MissingCredentials
from gateway.identity.spiffe import (
    DEFAULT_TRUST_DOMAIN,
    SpiffeId,
    check_trust_domain,
    domain_id,
    endpoint_dns_name,
    gateway_dns_name,
    gateway_id,
)

CA_DAYS = 3650
LEAF_DAYS = 365
LOOPBACK_DNS = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")
_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Issued:
    """Files written for one party."""

    identity: SpiffeId
    cert: Path
    key: Path
    not_after: datetime


def init_ca(
    directory: Path,
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
    *,
    days: int = CA_DAYS,
    force: bool = False,
) -> Issued:
    """Creates a CA for `trust_domain` in `directory`.

    Args:
        directory: The certificates folder (created if needed).
        trust_domain: Trust domain the CA vouches for; its URI SAN is `spiffe://<td>`.
        days: Validity of the CA certificate.
        force: Replace an existing CA. Every certificate it issued stops being trusted.

    Raises:
        IdentityError: A CA exists and `force` is not set, or the trust domain is invalid.
    """
    try:
        check_trust_domain(trust_domain)
    except ValueError as exc:
        raise IdentityError(str(exc)) from None
    ca_path, ca_key_path = directory / CA_FILE, directory / CA_KEY_FILE
    if not force and (ca_path.exists() or ca_key_path.exists()):
        raise IdentityError(
            f"{directory} already holds a CA ({CA_FILE}); replacing it invalidates every "
            "certificate it issued (use --force to do it anyway)"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedgate"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"fedgate development CA {trust_domain}"),
        ]
    )
    now = datetime.now(UTC)
    identity = SpiffeId(trust_domain)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(str(identity))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(ca_key_path, _key_pem(key))
    _write_public(ca_path, cert.public_bytes(serialization.Encoding.PEM))
    return Issued(identity, ca_path, ca_key_path, cert.not_valid_after_utc)


def issue_domain(
    directory: Path,
    name: str,
    *,
    days: int = LEAF_DAYS,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> Issued:
    """Issues domain `name`'s certificate (server and client) from the CA in `directory`.

    Raises:
        IdentityError: Bad name, or no usable CA in `directory`.
    """
    try:
        check_name("domain", name)
    except InvalidRequest as exc:
        raise IdentityError(exc.message) from None
    if name in RESERVED_NAMES:
        raise IdentityError(f"{name!r} is reserved for the certificates folder; pick another name")
    ca_cert, ca_key = _load_ca(directory)
    trust_domain = spiffe_id_of(ca_cert, directory / CA_FILE).trust_domain
    return _issue(
        directory,
        name,
        domain_id(trust_domain, name),
        ca_cert,
        ca_key,
        days=days,
        dns_names=(endpoint_dns_name(trust_domain, name), *dns_names),
        ip_addresses=ip_addresses,
    )


def issue_gateway(
    directory: Path,
    *,
    days: int = LEAF_DAYS,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> Issued:
    """Issues the gateway's certificate from the CA in `directory`.

    Args:
        directory: The certificates folder holding the CA.
        days: Validity.
        dns_names: Host names clients use to reach the gateway besides localhost.
        ip_addresses: IP addresses clients dial besides loopback.
    """
    ca_cert, ca_key = _load_ca(directory)
    trust_domain = spiffe_id_of(ca_cert, directory / CA_FILE).trust_domain
    return _issue(
        directory,
        GATEWAY,
        gateway_id(trust_domain),
        ca_cert,
        ca_key,
        days=days,
        dns_names=(gateway_dns_name(trust_domain), *dns_names),
        ip_addresses=ip_addresses,
    )


def issue_federation(
    directory: Path,
    domains: tuple[str, ...],
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
) -> list[Issued]:
    """A fresh CA with the gateway's and each domain's certificate (demo and tests).

    Replaces any CA already in `directory`.
    """
    issued = [init_ca(directory, trust_domain, force=True), issue_gateway(directory)]
    return issued + [issue_domain(directory, name) for name in domains]


def _issue(
    directory: Path,
    party: str,
    identity: SpiffeId,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    days: int,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
) -> Issued:
    try:
        ips = [ipaddress.ip_address(a) for a in (*LOOPBACK_IPS, *ip_addresses)]
    except ValueError as exc:
        raise IdentityError(str(exc)) from None
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(identity))]
    names += [x509.DNSName(d) for d in dict.fromkeys((*dns_names, *LOOPBACK_DNS))]
    names += [x509.IPAddress(ip) for ip in dict.fromkeys(ips)]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedgate"),
                    x509.NameAttribute(NameOID.COMMON_NAME, party),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = cert_file(directory, party), key_file(directory, party)
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Issued(identity, cert_path, key_path, cert.not_valid_after_utc)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_path, ca_key_path = directory / CA_FILE, directory / CA_KEY_FILE
    if not ca_path.is_file() or not ca_key_path.is_file():
        raise MissingCredentials(
            f"no CA in {directory}: create one with: fedgate certs init --dir {directory}"
        )
    try:
        cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise InvalidCertificate(f"{ca_path} or {ca_key_path.name} is not readable PEM") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise InvalidCertificate(f"{ca_key_path} is not the EC key of {ca_path}")
    return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # gRPC loads only unencrypted PEM keys
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the first byte, then renamed over any older key.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
