from __future__ import annotations

import pytest

from gateway.identity.spiffe import (
    SpiffeId,
    check_trust_domain,
    domain_id,
    endpoint_dns_name,
    gateway_id,
)


def test_domain_and_gateway_ids_round_trip() -> None:
    risk = domain_id("fedgate.local", "risk")
    assert str(risk) == "spiffe://fedgate.local/domain/risk"
    assert SpiffeId.parse(str(risk)) == risk
    assert risk.domain == "risk"
    assert not risk.is_gateway
    gateway = SpiffeId.parse("spiffe://fedgate.local/gateway")
    assert gateway == gateway_id("fedgate.local")
    assert gateway.is_gateway
    assert gateway.domain is None
    assert SpiffeId.parse("spiffe://example.org") == SpiffeId("example.org")


@pytest.mark.parametrize(
    "path",
    ["/domain/", "/domain/A", "/domain/risk/agent/x", "/domain/r", "/domains/risk", "/other"],
)
def test_only_valid_domain_paths_name_a_domain(path: str) -> None:
    assert SpiffeId("fedgate.local", path).domain is None


@pytest.mark.parametrize(
    "uri",
    [
        "https://fedgate.local/domain/risk",
        "spiffe://",
        "spiffe://Fedgate.local/domain/risk",
        "spiffe://fedgate..local/x",
        "spiffe://fedgate.local/domain/risk/",
        "spiffe://fedgate.local//domain",
        "spiffe://fedgate.local/domain/risk?x=1",
        "spiffe://fed_gate.local/x",
    ],
)
def test_malformed_ids_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match=r"SPIFFE|trust domain"):
        SpiffeId.parse(uri)


@pytest.mark.parametrize("value", ["", "-x", "x-", "a b", "UPPER", "a/b"])
def test_bad_trust_domains(value: str) -> None:
    with pytest.raises(ValueError, match="invalid trust domain"):
        check_trust_domain(value)


def test_endpoint_dns_name_is_per_domain_and_trust_domain() -> None:
    assert endpoint_dns_name("fedgate.local", "risk") == "risk.domain.fedgate.local"
