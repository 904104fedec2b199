"""The `ContextService` servicer: translates messages and maps errors, nothing more.

The use cases, their policy decisions and audit records live in
`gateway.core.context.space`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import grpc

from federation.v1 import context_pb2 as ctx
from federation.v1 import context_pb2_grpc as ctx_grpc
from gateway.core.context.items import ContextView
from gateway.core.context.space import ContextSpace
from gateway.services.context_convert import view_to_proto, write_from_proto
from gateway.services.errors import abort_for
from gateway.services.identity import caller_of

Context = grpc.aio.ServicerContext[object, object]


class ContextService(ctx_grpc.ContextServiceServicer):
    """Put, Get, List, History, Watch and Delete of shared context items."""

    def __init__(self, space: ContextSpace) -> None:
        self._space = space

    async def Put(  # noqa: N802 - gRPC method names are PascalCase
        self, request: ctx.PutContextRequest, context: Context
    ) -> ctx.PutContextResponse:
        try:
            item = await self._space.put(caller_of(context), write_from_proto(request))
        except Exception as exc:
            await abort_for(context, exc, request.trace_id)
        return ctx.PutContextResponse(item=view_to_proto(ContextView(item)))

    async def Get(  # noqa: N802
        self, request: ctx.GetContextRequest, context: Context
    ) -> ctx.GetContextResponse:
        try:
            view = await self._space.get(
                caller_of(context), request.trace_id, request.key, request.version
            )
        except Exception as exc:
            await abort_for(context, exc, request.trace_id)
        return ctx.GetContextResponse(item=view_to_proto(view))

    async def List(  # noqa: N802
        self, request: ctx.ListContextRequest, context: Context
    ) -> ctx.ListContextResponse:
        try:
            views = await self._space.list_items(
                caller_of(context), request.trace_id, request.key_prefix
            )
        except Exception as exc:
            await abort_for(context, exc, request.trace_id)
        return ctx.ListContextResponse(items=[view_to_proto(v) for v in views])

    async def History(  # noqa: N802
        self, request: ctx.ContextHistoryRequest, context: Context
    ) -> ctx.ContextHistoryResponse:
        try:
            views = await self._space.history(caller_of(context), request.trace_id, request.key)
        except Exception as exc:
            await abort_for(context, exc, request.trace_id)
        return ctx.ContextHistoryResponse(versions=[view_to_proto(v) for v in views])

    async def Watch(  # noqa: N802
        self, request: ctx.WatchContextRequest, context: Context
    ) -> AsyncIterator[ctx.ContextItem]:
        try:
            changes = self._space.watch(
                caller_of(context), request.trace_id, request.after_revision
            )
            async with aclosing(changes):
                async for view in changes:
                    yield view_to_proto(view)
        except Exception as exc:
            await abort_for(context, exc, request.trace_id)

    async def Delete(  # noqa: N802
        self, request: ctx.DeleteContextRequest, context: Context
    ) -> ctx.DeleteContextResponse:
        try:
            item = await self._space.delete(
                caller_of(context),
                request.trace_id,
                request.key,
                request.expected_version if request.HasField("expected_version") else None,
            )
        except Exception as exc:
            await abort_for(context, exc, request.trace_id)
        return ctx.DeleteContextResponse(item=view_to_proto(ContextView(item)))
