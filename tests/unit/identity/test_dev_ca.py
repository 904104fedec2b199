from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.identity import dev_ca
from gateway.identity.credentials import Credentials
from gateway.identity.errors import IdentityError, InvalidCertificate, MissingCredentials
from gateway.services.tls import GATEWAY_SERVER_NAME_ENV, gateway_name_options


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    dev_ca.init_ca(directory, "example.test")
    dev_ca.issue_gateway(directory, dns_names=("gw.example.com",), ip_addresses=("10.0.0.7",))
    dev_ca.issue_domain(directory, "risk")
    dev_ca.issue_domain(directory, "cli")
    return directory


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_layout_and_key_permissions(certs: Path) -> None:
    names = sorted(p.name for p in certs.iterdir())
    assert names == [
        "ca-key.pem",
        "ca.pem",
        "cli-key.pem",
        "cli.pem",
        "gateway-key.pem",
        "gateway.pem",
        "risk-key.pem",
        "risk.pem",
    ]
    for path in certs.glob("*-key.pem"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_ca_names_its_trust_domain_and_signs_only_certificates(certs: Path) -> None:
    ca = _load(certs / "ca.pem")
    assert _sans(ca).get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://example.test"
    ]
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0


def test_domain_certificate_is_server_and_client_with_loopback_names(certs: Path) -> None:
    risk = _load(certs / "risk.pem")
    sans = _sans(risk)
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://example.test/domain/risk"
    ]
    assert sans.get_values_for_type(x509.DNSName) == ["risk.domain.example.test", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    usage = risk.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not risk.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_gateway_certificate_with_extra_names(certs: Path) -> None:
    sans = _sans(_load(certs / "gateway.pem"))
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://example.test/gateway"
    ]
    # gateway.<td> is the name clients verify; only the gateway's certificate has it.
    assert sans.get_values_for_type(x509.DNSName) == [
        "gateway.example.test",
        "gw.example.com",
        "localhost",
    ]
    assert ipaddress.ip_address("10.0.0.7") in sans.get_values_for_type(x509.IPAddress)
    assert Credentials.load(certs, "gateway").dns_names[0] == "gateway.example.test"


def test_clients_verify_the_gateways_name_unless_told_otherwise(certs: Path) -> None:
    cli = Credentials.load(certs, "cli")
    override = "grpc.ssl_target_name_override"
    assert gateway_name_options(cli, {}) == [(override, "gateway.example.test")]
    assert gateway_name_options(cli, {GATEWAY_SERVER_NAME_ENV: "gw.example.com"}) == [
        (override, "gw.example.com")
    ]
    assert gateway_name_options(cli, {GATEWAY_SERVER_NAME_ENV: ""}) == []


def test_credentials_load_and_name_the_identity(certs: Path) -> None:
    risk = Credentials.load(certs, "risk")
    assert str(risk.identity) == "spiffe://example.test/domain/risk"
    assert risk.trust_domain == "example.test"
    assert "key_pem" not in repr(risk)
    assert Credentials.load(certs, "gateway").identity.is_gateway


def test_missing_credentials_say_how_to_create_them(tmp_path: Path, certs: Path) -> None:
    with pytest.raises(MissingCredentials) as empty:
        Credentials.load(tmp_path, "risk")
    assert (
        f"fedgate certs init --dir {tmp_path} && fedgate certs issue --domain risk --dir {tmp_path}"
        in empty.value.message
    )
    with pytest.raises(MissingCredentials) as no_gateway:
        Credentials.load(certs, "finance")
    assert no_gateway.value.message.endswith(f"fedgate certs issue --domain finance --dir {certs}")
    with pytest.raises(MissingCredentials, match="fedgate certs init --dir"):
        dev_ca.issue_domain(tmp_path, "risk")


def test_existing_ca_is_kept_unless_forced(tmp_path: Path) -> None:
    dev_ca.init_ca(tmp_path)
    dev_ca.issue_domain(tmp_path, "risk")
    with pytest.raises(IdentityError, match="already holds a CA"):
        dev_ca.init_ca(tmp_path)
    dev_ca.init_ca(tmp_path, force=True)
    # The old certificate no longer chains to the new CA: loading says so.
    with pytest.raises(InvalidCertificate, match="not issued by the CA"):
        Credentials.load(tmp_path, "risk")


def test_certificate_of_another_ca_or_key_is_refused(tmp_path: Path, certs: Path) -> None:
    other = tmp_path / "other"
    dev_ca.init_ca(other)
    dev_ca.issue_domain(other, "risk")
    with pytest.raises(InvalidCertificate, match="not issued by the CA"):
        Credentials.from_files(
            ca=certs / "ca.pem", cert=other / "risk.pem", key=other / "risk-key.pem"
        )
    with pytest.raises(InvalidCertificate, match="private key does not belong"):
        Credentials.from_files(
            ca=certs / "ca.pem", cert=certs / "risk.pem", key=certs / "cli-key.pem"
        )
    with pytest.raises(InvalidCertificate, match="not a PEM certificate"):
        Credentials.from_pem(b"junk", b"junk", b"junk")


@pytest.mark.parametrize(
    ("name", "message"),
    [("ca", "reserved"), ("gateway", "reserved"), ("Risk", "invalid domain name")],
)
def test_bad_domain_names(certs: Path, name: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        dev_ca.issue_domain(certs, name)


def test_bad_trust_domain_and_ip(tmp_path: Path, certs: Path) -> None:
    with pytest.raises(IdentityError, match="invalid trust domain"):
        dev_ca.init_ca(tmp_path, "Not Valid")
    with pytest.raises(IdentityError, match="does not appear to be an IPv4 or IPv6"):
        dev_ca.issue_gateway(certs, ip_addresses=("nope",))
