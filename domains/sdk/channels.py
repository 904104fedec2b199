"""The one place where the SDK builds its channel to the gateway.

Until mTLS is on, a domain proves nothing: it asserts its name in the
`fedgate-caller-domain` metadata of every call. The identity issue replaces the
interceptor below with client certificates (`grpc.aio.secure_channel`); nothing
else in the SDK knows how the channel authenticates.

Channels are long-lived and shared: a `GatewayClient` opens one lazily and every
call of that client (registration, heartbeats, every nested task call) reuses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from gateway.core.names import check_name
from gateway.services import metadata

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


def open_gateway_channel(address: str, *, domain: str) -> grpc.aio.Channel:
    """Opens a channel to the gateway that identifies the calling domain.

    Must be called inside a running event loop; the channel belongs to that loop.
    The caller owns the channel and closes it (`await channel.close()`).

    Args:
        address: The gateway's `host:port`.
        domain: The calling domain, sent with every call.

    Returns:
        A grpc.aio channel whose every call carries the caller-domain metadata.
    """
    check_name("domain", domain)
    return grpc.aio.insecure_channel(
        address, options=list(_CHANNEL_OPTIONS), interceptors=_identity_interceptors(domain)
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
