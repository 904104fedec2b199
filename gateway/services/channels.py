"""Long-lived outbound channels to domain endpoints: one per endpoint, never one per call.

With credentials (mTLS, the default) every channel presents the gateway's
certificate and accepts only the server certificate of the domain it dials: the
handshake must find the DNS name `<domain>.domain.<trust-domain>` in it
(`grpc.ssl_target_name_override`), a name the CA puts only into that domain's
certificate. An endpoint holding any other certificate of the federation fails
the handshake, before a task's input leaves the gateway.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from gateway.identity.credentials import Credentials
from gateway.identity.spiffe import domain_id, endpoint_dns_name
from gateway.services.tls import channel_credentials


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    """Options for every channel the gateway opens (message limits, keepalive)."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Five minutes is what gRPC servers in every language accept by default; pinging
        # more often gets the connection closed (GOAWAY too_many_pings) mid-task.
        ("grpc.keepalive_time_ms", 300_000),
        ("grpc.keepalive_timeout_ms", 20_000),
    ]


class ChannelPool:
    """Opens a channel per (domain, endpoint address) on first use and keeps it open."""

    def __init__(self, max_message_bytes: int, *, credentials: Credentials | None) -> None:
        """Creates the pool.

        Args:
            max_message_bytes: Largest message sent or received.
            credentials: The gateway's certificate, key and CA; None dials in plaintext
                (insecure mode).
        """
        self._options = channel_options(max_message_bytes)
        self._credentials = credentials
        self._tls = None if credentials is None else channel_credentials(credentials)
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    @property
    def secure(self) -> bool:
        """True when channels use mTLS and verify the endpoint's domain."""
        return self._tls is not None

    def expected_identity(self, domain: str) -> str:
        """The identity an endpoint of `domain` must prove (empty in insecure mode)."""
        if self._credentials is None:
            return ""
        return str(domain_id(self._credentials.trust_domain, domain))

    def get(self, address: str, domain: str) -> grpc.aio.Channel:
        """The channel to `domain`'s endpoint at `address`, opened now if needed."""
        key = (domain, address)
        channel = self._channels.get(key)
        if channel is None:
            if self._tls is None or self._credentials is None:
                channel = grpc.aio.insecure_channel(address, options=self._options)
            else:
                name = endpoint_dns_name(self._credentials.trust_domain, domain)
                channel = grpc.aio.secure_channel(
                    address,
                    self._tls,
                    options=[*self._options, ("grpc.ssl_target_name_override", name)],
                )
            self._channels[key] = channel
        return channel

    def find(self, address: str) -> grpc.aio.Channel | None:
        """An open channel to `address` for any domain (None if there is none)."""
        return next((c for (_, a), c in self._channels.items() if a == address), None)

    async def discard(self, address: str) -> None:
        """Closes the channels to an endpoint address that left routing."""
        gone = [key for key in self._channels if key[1] == address]
        await asyncio.gather(*(self._channels.pop(key).close() for key in gone))

    async def close(self) -> None:
        """Closes every channel."""
        channels, self._channels = self._channels, {}
        await asyncio.gather(*(c.close() for c in channels.values()))
