"""Async client of the gateway's `ContextService`, over a `GatewayClient`'s channel.

Errors come back as the gateway's exception tree (`translate_rpc_errors`):
`VersionConflict` for a stale write (its message names the current version),
`PolicyDenied`, `NotFound`, `InvalidRequest`, ...
"""

# ruff: noqa: ASYNC109 - a `timeout` here becomes the gRPC deadline.

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from domains.sdk.gateway_client import GatewayClient, translate_rpc_errors
from federation.v1 import context_pb2 as ctx
from federation.v1 import context_pb2_grpc as ctx_grpc
from gateway.core.context.items import ContextItem, ContextView
from gateway.core.models import Classification
from gateway.services import convert, metadata
from gateway.services.context_convert import encode_value, view_from_proto


class ContextClient:
    """Reads and writes shared context as the client's domain (and agent).

    Example:
        ```python
        async with GatewayClient("127.0.0.1:7443", domain="support") as gateway:
            context = ContextClient(gateway)
            item = await context.put(trace, "case", {"order": "o-1"},
                                     classification=Classification.CONFIDENTIAL,
                                     expected_version=0)
        ```
    """

    def __init__(self, gateway: GatewayClient) -> None:
        self._gateway = gateway

    @property
    def _stub(self) -> ctx_grpc.ContextServiceAsyncStub:
        return ctx_grpc.ContextServiceStub(self._gateway.channel)

    async def put(
        self,
        trace_id: str,
        key: str,
        value: Any,
        *,
        classification: Classification | None = None,
        expected_version: int | None = None,
        ttl: float | None = None,
        grant: str = "",
        timeout: float | None = 10.0,
    ) -> ContextItem:
        """Writes the next version of an item this domain owns (or creates it).

        Args:
            trace_id: The trace the item lives in.
            key: The item's key.
            value: Any JSON value.
            classification: Its sensitivity; None: the task's declared one (with a
                grant), else internal.
            expected_version: Write only over this version (0: create only);
                None: over whatever is current.
            ttl: Seconds to live; None: the gateway's default.
            grant: The running task's write grant (the SDK's `TaskContext` passes it).
            timeout: Seconds to wait for the gateway.

        Raises:
            gateway.errors.VersionConflict: `expected_version` is stale.
            gateway.errors.PolicyDenied: Not allowed, not the owner, or above the
                capability's declared classification.
        """
        request = ctx.PutContextRequest(
            trace_id=trace_id, key=key, value_json=encode_value(value), grant=grant
        )
        if classification is not None:
            request.classification = convert.classification_to_proto(classification)
        if expected_version is not None:
            request.expected_version = expected_version
        if ttl is not None:
            request.ttl.FromTimedelta(timedelta(seconds=ttl))
        with translate_rpc_errors():
            response = await self._stub.Put(request, timeout=timeout, metadata=self._metadata())
        return view_from_proto(response.item).item

    async def get(
        self, trace_id: str, key: str, *, version: int = 0, timeout: float | None = 10.0
    ) -> ContextView:
        """One item (latest or `version`), whole or redacted; `NotFound` if none."""
        with translate_rpc_errors():
            response = await self._stub.Get(
                ctx.GetContextRequest(trace_id=trace_id, key=key, version=version),
                timeout=timeout,
                metadata=self._metadata(),
            )
        return view_from_proto(response.item)

    async def list_items(
        self, trace_id: str, *, prefix: str = "", timeout: float | None = 10.0
    ) -> list[ContextView]:
        """The live items of a trace whose key starts with `prefix`, by key."""
        with translate_rpc_errors():
            response = await self._stub.List(
                ctx.ListContextRequest(trace_id=trace_id, key_prefix=prefix),
                timeout=timeout,
                metadata=self._metadata(),
            )
        return [view_from_proto(i) for i in response.items]

    async def history(
        self, trace_id: str, key: str, *, timeout: float | None = 10.0
    ) -> list[ContextView]:
        """Every stored version of an item, oldest first."""
        with translate_rpc_errors():
            response = await self._stub.History(
                ctx.ContextHistoryRequest(trace_id=trace_id, key=key),
                timeout=timeout,
                metadata=self._metadata(),
            )
        return [view_from_proto(i) for i in response.versions]

    async def delete(
        self,
        trace_id: str,
        key: str,
        *,
        expected_version: int | None = None,
        timeout: float | None = 10.0,
    ) -> ContextItem:
        """Deletes an item this domain owns; returns the tombstone version."""
        request = ctx.DeleteContextRequest(trace_id=trace_id, key=key)
        if expected_version is not None:
            request.expected_version = expected_version
        with translate_rpc_errors():
            response = await self._stub.Delete(request, timeout=timeout, metadata=self._metadata())
        return view_from_proto(response.item).item

    async def watch(self, trace_id: str, *, after_revision: int = 0) -> AsyncIterator[ContextView]:
        """Every change of a trace after `after_revision`, then new ones as they happen.

        To resume after a disconnect, watch again from the last `item.revision` seen.
        """
        call = self._stub.Watch(
            ctx.WatchContextRequest(trace_id=trace_id, after_revision=after_revision),
            metadata=self._metadata(),
        )
        try:
            with translate_rpc_errors():
                async for message in call:
                    yield view_from_proto(message)
        finally:
            call.cancel()

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        agent = self._gateway.agent
        return ((metadata.CALLER_AGENT, agent),) if agent else ()
