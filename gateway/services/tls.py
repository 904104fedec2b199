"""gRPC credentials from a party's `Credentials`: mutual TLS for every server and channel.

The gateway, the domains' orchestrators, the SDK and the CLI all build their TLS
here, so every hop of the federation authenticates both ends the same way:
certificates chained to the federation CA, client certificates required.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import grpc

from gateway.identity.credentials import CA_FILE, GATEWAY, Credentials, cert_file, key_file
from gateway.identity.errors import InvalidCertificate
from gateway.identity.spiffe import gateway_dns_name
from gateway.settings import Settings

log = logging.getLogger(__name__)

INSECURE_WARNING = (
    "INSECURE MODE: plaintext gRPC and self-asserted identities (any caller can claim to be "
    "any domain). For local experiments only; never use --insecure in production."
)
"""The loud warning every process started with --insecure prints."""

GATEWAY_SERVER_NAME_ENV = "FEDGATE_GATEWAY_SERVER_NAME"
"""Overrides the name clients verify in the gateway's certificate (empty: the dialled host)."""


def server_credentials(credentials: Credentials) -> grpc.ServerCredentials:
    """Serves with `credentials` and requires a client certificate chained to its CA."""
    return grpc.ssl_server_credentials(
        [(credentials.key_pem, credentials.cert_pem)],
        root_certificates=credentials.ca_pem,
        require_client_auth=True,
    )


def channel_credentials(credentials: Credentials) -> grpc.ChannelCredentials:
    """Presents `credentials` as client certificate and trusts only its CA."""
    return grpc.ssl_channel_credentials(
        root_certificates=credentials.ca_pem,
        private_key=credentials.key_pem,
        certificate_chain=credentials.cert_pem,
    )


def gateway_name_options(
    credentials: Credentials, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Channel options that make a client verify the gateway's name, not the dialled host.

    Every certificate of the development CA names localhost, so checking the dialled
    host alone would let any domain listening on loopback pose as the gateway. Clients
    therefore verify `gateway.<trust-domain>`, which only the gateway's certificate
    carries. `$FEDGATE_GATEWAY_SERVER_NAME` names another host (a certificate from your
    own PKI); set it empty to verify the dialled host.
    """
    env = os.environ if environ is None else environ
    name = env.get(GATEWAY_SERVER_NAME_ENV, gateway_dns_name(credentials.trust_domain))
    return [("grpc.ssl_target_name_override", name)] if name else []


def gateway_credentials(settings: Settings) -> Credentials | None:
    """The gateway's own credentials per `settings.tls`; None in insecure mode.

    Raises:
        MissingCredentials: The files are missing (the message says how to create them).
        InvalidCertificate: They do not fit together, or do not name the gateway or the
            configured trust domain.
    """
    tls = settings.tls
    if tls.insecure:
        return None
    directory = settings.certs_dir
    if tls.cert or tls.key or tls.ca:
        credentials = Credentials.from_files(
            ca=tls.ca or directory / CA_FILE,
            cert=tls.cert or cert_file(directory, GATEWAY),
            key=tls.key or key_file(directory, GATEWAY),
        )
    else:
        credentials = Credentials.load(directory, GATEWAY)
    if not credentials.identity.is_gateway:
        raise InvalidCertificate(
            f"the gateway's certificate names {credentials.identity}, not "
            f"spiffe://<trust-domain>/gateway; issue one with: "
            f"fedgate certs issue --gateway --dir {directory}"
        )
    if tls.trust_domain and tls.trust_domain != credentials.trust_domain:
        raise InvalidCertificate(
            f"the gateway's certificate belongs to trust domain {credentials.trust_domain!r}, "
            f"the settings expect {tls.trust_domain!r}"
        )
    expected = gateway_dns_name(credentials.trust_domain)
    if expected not in credentials.dns_names:
        log.warning(
            "the gateway's certificate does not name %s, the name clients verify: they will "
            "refuse this gateway unless %s names a host it carries; issue a new one with "
            "fedgate certs issue --gateway --dir %s",
            expected,
            GATEWAY_SERVER_NAME_ENV,
            directory,
        )
    return credentials
