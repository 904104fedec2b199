"""The one place where the SDK builds its channel to the gateway.

With credentials (mTLS, the default) the channel presents the domain's certificate;
the gateway derives the calling domain from it, so the SDK sends no identity of its
own. Without (insecure mode: local experiments and tests only) the domain asserts
its name in the `fedgate-caller-domain` metadata of every call, added by the
interceptors below. Nothing else in the SDK knows how the channel authenticates.

Channels are long-lived and shared: a `GatewayClient` opens one lazily and every
call of that client (registration, heartbeats, every nested task call) reuses it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from gateway.core.names import check_name
from gateway.identity.credentials import Credentials, default_certs_dir, insecure_requested
from gateway.services import metadata
from gateway.services.tls import INSECURE_WARNING, channel_credentials, gateway_name_options

log = logging.getLogger(__name__)

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # Keepalive notices a gateway that went away without closing the connection
    # (node loss, NAT timeouts) during long calls. Pings are sent only while calls
    # are active and at most twice without data (gRPC's default), which stays
    # within what a server with default ping policing accepts.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
]


def resolve_credentials(
    domain: str, *, credentials: Credentials | None = None, insecure: bool = False
) -> Credentials | None:
    """The credentials a domain uses: given, or loaded from the certificates folder.

    Args:
        domain: The domain the credentials must prove.
        credentials: Explicit credentials; None loads `<dir>/<domain>.pem` (and its
            key and `ca.pem`) from `$FEDGATE_CERTS`, else `.fedgate/certs`.
        insecure: No credentials at all (plaintext, identity in metadata): local
            experiments and tests only. `FEDGATE_INSECURE=1` in the environment has
            the same effect when no credentials are given.

    Returns:
        The credentials, or None when `insecure`.

    Raises:
        ValueError: Both `credentials` and `insecure`, or credentials of another domain.
        gateway.identity.errors.MissingCredentials: No certificate for `domain` in the
            folder (the message says how to create it).
        gateway.identity.errors.InvalidCertificate: The files do not fit together.
    """
    if insecure and credentials is not None:
        raise ValueError("pass credentials or insecure=True, not both")
    if insecure or (credentials is None and insecure_requested()):
        log.warning("domain %s: %s", domain, INSECURE_WARNING)
        return None
    if credentials is None:
        credentials = Credentials.load(default_certs_dir(), domain)
    if credentials.identity.domain != domain:
        raise ValueError(f"the certificate proves {credentials.identity}, not domain {domain!r}")
    return credentials


def open_gateway_channel(
    address: str, *, domain: str, credentials: Credentials | None
) -> grpc.aio.Channel:
    """Opens a channel to the gateway that identifies the calling domain.

    Must be called inside a running event loop; the channel belongs to that loop.
    The caller owns the channel and closes it (`await channel.close()`).

    Args:
        address: The gateway's `host:port`. With mTLS the gateway's certificate must
            name `gateway.<trust-domain>` (the development CA issues it so), or the
            host in `$FEDGATE_GATEWAY_SERVER_NAME`; see `gateway_name_options`.
        domain: The calling domain.
        credentials: The domain's certificate, key and CA (mTLS); None for insecure
            mode, where the domain is asserted in metadata.

    Returns:
        A grpc.aio channel.

    Raises:
        ValueError: The credentials prove another domain than `domain`.
    """
    check_name("domain", domain)
    if credentials is None:
        return grpc.aio.insecure_channel(
            address, options=list(_CHANNEL_OPTIONS), interceptors=_identity_interceptors(domain)
        )
    if credentials.identity.domain != domain:
        raise ValueError(f"the certificate proves {credentials.identity}, not domain {domain!r}")
    return grpc.aio.secure_channel(
        address,
        channel_credentials(credentials),
        options=[*_CHANNEL_OPTIONS, *gateway_name_options(credentials)],
    )


def _identity_interceptors(domain: str) -> list[grpc.aio.ClientInterceptor]:
    identity = (metadata.CALLER_DOMAIN, domain)
    return [_UnaryIdentity(identity), _StreamIdentity(identity)]


def _with_identity(
    details: grpc.aio.ClientCallDetails, identity: tuple[str, str]
) -> grpc.aio.ClientCallDetails:
    # Drop any caller-domain value set on the call so the channel's identity wins.
    carried = [(k, v) for k, v in (details.metadata or ()) if k != identity[0]]
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=grpc.aio.Metadata(*carried, identity),
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


class _UnaryIdentity(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, identity: tuple[str, str]) -> None:
        self._identity = identity

    async def intercept_unary_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _Req], Awaitable[grpc.aio.UnaryUnaryCall[_Req, _Resp]]
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: _Req,
    ) -> _Resp | grpc.aio.UnaryUnaryCall[_Req, _Resp]:
        return await continuation(_with_identity(client_call_details, self._identity), request)


class _StreamIdentity(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, identity: tuple[str, str]) -> None:
        self._identity = identity

    async def intercept_unary_stream(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _Req], Awaitable[grpc.aio.UnaryStreamCall[_Req, _Resp]]
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: _Req,
    ) -> AsyncIterator[_Resp] | grpc.aio.UnaryStreamCall[_Req, _Resp]:
        return await continuation(_with_identity(client_call_details, self._identity), request)
