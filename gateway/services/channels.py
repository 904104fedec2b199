"""Long-lived outbound channels to domain endpoints: one per address, never one per call."""

from __future__ import annotations

import asyncio

import grpc


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
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
    """Opens a channel per endpoint address on first use and keeps it open."""

    def __init__(self, max_message_bytes: int) -> None:
        self._options = channel_options(max_message_bytes)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def get(self, address: str) -> grpc.aio.Channel:
        """The channel to `address`, opened now if needed."""
        channel = self._channels.get(address)
        if channel is None:
            # Insecure until the identity issue puts mTLS here, in this one place.
            channel = grpc.aio.insecure_channel(address, options=self._options)
            self._channels[address] = channel
        return channel

    async def discard(self, address: str) -> None:
        """Closes the channel to an endpoint that left routing."""
        channel = self._channels.pop(address, None)
        if channel is not None:
            await channel.close()

    async def close(self) -> None:
        """Closes every channel."""
        channels, self._channels = self._channels, {}
        await asyncio.gather(*(c.close() for c in channels.values()))
