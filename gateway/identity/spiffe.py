"""SPIFFE IDs: how a certificate names a party of the federation.

    spiffe://<trust-domain>                   the trust domain itself (the CA's URI SAN)
    spiffe://<trust-domain>/gateway           the federation gateway
    spiffe://<trust-domain>/domain/<name>     a domain's orchestrator (and its callers)

A domain's certificate also carries the DNS name `<name>.domain.<trust-domain>`
(`endpoint_dns_name`): the gateway asks the TLS handshake for exactly that name
when it dials the domain, so an endpoint holding another domain's certificate
fails the handshake before any task input leaves the gateway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.core.names import NAME_PATTERN

DEFAULT_TRUST_DOMAIN = "fedgate.local"
"""Trust domain of `fedgate certs init` unless told otherwise."""

TRUST_DOMAIN_PATTERN = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
"""Trust domains: lowercase DNS-like names (stricter than SPIFFE, so they fit DNS SANs)."""

SCHEME = "spiffe://"
GATEWAY_PATH = "/gateway"
DOMAIN_PREFIX = "/domain/"


def check_trust_domain(value: str) -> str:
    """Returns `value` if it is a valid trust domain, else raises ValueError."""
    if not TRUST_DOMAIN_PATTERN.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid trust domain {value!r}: use lowercase letters, digits, '.' and '-', "
            "for example fedgate.local"
        )
    return value


@dataclass(frozen=True, slots=True)
class SpiffeId:
    """A parsed SPIFFE ID: trust domain and path (empty for the trust domain itself)."""

    trust_domain: str
    path: str = ""

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}{self.path}"

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        """Parses `spiffe://<trust-domain>[/path]`; raises ValueError when malformed."""
        if not uri.startswith(SCHEME):
            raise ValueError(f"not a SPIFFE ID: {uri!r}")
        trust_domain, slash, path = uri[len(SCHEME) :].partition("/")
        check_trust_domain(trust_domain)
        path = slash + path
        if path and (path.endswith("/") or "//" in path or "?" in path or "#" in path):
            raise ValueError(f"malformed SPIFFE ID path: {uri!r}")
        return cls(trust_domain, path)

    @property
    def domain(self) -> str | None:
        """The domain name for `/domain/<name>`, else None."""
        if not self.path.startswith(DOMAIN_PREFIX):
            return None
        name = self.path[len(DOMAIN_PREFIX) :]
        return name if NAME_PATTERN.fullmatch(name) else None

    @property
    def is_gateway(self) -> bool:
        """True for the gateway's ID."""
        return self.path == GATEWAY_PATH


def domain_id(trust_domain: str, name: str) -> SpiffeId:
    """The SPIFFE ID of domain `name`."""
    return SpiffeId(trust_domain, DOMAIN_PREFIX + name)


def gateway_id(trust_domain: str) -> SpiffeId:
    """The SPIFFE ID of the gateway."""
    return SpiffeId(trust_domain, GATEWAY_PATH)


def endpoint_dns_name(trust_domain: str, domain: str) -> str:
    """The DNS name a domain's server certificate carries and the gateway verifies."""
    return f"{domain}.domain.{trust_domain}"


def gateway_dns_name(trust_domain: str) -> str:
    """The DNS name the gateway's certificate carries and every client verifies.

    Clients check this name instead of the dialled host, so that no other party of the
    federation (whose certificates also name localhost) can pose as the gateway.
    """
    return f"gateway.{trust_domain}"
