"""The `AuditService` servicer: translates messages and maps errors, nothing more.

The use cases and their authorization (`audit.read`) live in `gateway.audit.reader`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import get_args

import grpc

from federation.v1 import audit_pb2 as au
from federation.v1 import audit_pb2_grpc as au_grpc
from gateway.audit.reader import AuditReader, ExportFormat
from gateway.core.context.items import check_key
from gateway.core.context.lineage import lineage_of
from gateway.errors import InvalidRequest
from gateway.services.audit_convert import (
    checkpoint_to_proto,
    lineage_step_to_proto,
    query_from_proto,
    record_to_proto,
)
from gateway.services.errors import abort_for
from gateway.services.identity import caller_of

Context = grpc.aio.ServicerContext[object, object]

EXPORT_CHUNK = 64 * 1024
"""Bytes per export message at most (records are never split across messages)."""


class AuditService(au_grpc.AuditServiceServicer):
    """Compliance queries and proofs over the audit trail."""

    def __init__(self, reader: AuditReader) -> None:
        self._reader = reader

    async def QueryRecords(  # noqa: N802 - gRPC method names are PascalCase
        self, request: au.QueryRecordsRequest, context: Context
    ) -> au.QueryRecordsResponse:
        try:
            query = query_from_proto(
                request.filter,
                cursor=request.cursor if request.HasField("cursor") else None,
                oldest_first=request.oldest_first,
                page_size=request.page_size,
            )
            page = await self._reader.query(caller_of(context), query)
        except Exception as exc:
            await abort_for(context, exc)
        response = au.QueryRecordsResponse(
            records=[record_to_proto(r) for r in page.records], log_size=page.log_size
        )
        if page.next_cursor is not None:
            response.next_cursor = page.next_cursor
        return response

    async def GetLineage(  # noqa: N802
        self, request: au.GetLineageRequest, context: Context
    ) -> au.GetLineageResponse:
        try:
            check_key(request.key)
            records = await self._reader.trace(caller_of(context), request.trace_id)
        except Exception as exc:
            await abort_for(context, exc)
        return au.GetLineageResponse(
            steps=[lineage_step_to_proto(s) for s in lineage_of(records, request.key)]
        )

    async def GetTrace(  # noqa: N802
        self, request: au.GetTraceRequest, context: Context
    ) -> au.GetTraceResponse:
        try:
            records = await self._reader.trace(caller_of(context), request.trace_id)
        except Exception as exc:
            await abort_for(context, exc)
        return au.GetTraceResponse(records=[record_to_proto(r) for r in records])

    async def GetCheckpoint(  # noqa: N802
        self, request: au.GetCheckpointRequest, context: Context
    ) -> au.SignedCheckpoint:
        try:
            checkpoint = await self._reader.checkpoint(caller_of(context), request.size or None)
        except Exception as exc:
            await abort_for(context, exc)
        return checkpoint_to_proto(checkpoint)

    async def ProveInclusion(  # noqa: N802
        self, request: au.ProveInclusionRequest, context: Context
    ) -> au.InclusionProof:
        try:
            answer = await self._reader.prove_inclusion(
                caller_of(context), request.seq, request.tree_size or None
            )
        except Exception as exc:
            await abort_for(context, exc)
        return au.InclusionProof(
            record=record_to_proto(answer.record),
            tree_size=answer.tree_size,
            hashes=answer.hashes,
            checkpoint=checkpoint_to_proto(answer.checkpoint),
        )

    async def ProveConsistency(  # noqa: N802
        self, request: au.ProveConsistencyRequest, context: Context
    ) -> au.ConsistencyProof:
        try:
            answer = await self._reader.prove_consistency(
                caller_of(context), request.old_size, request.new_size or None
            )
        except Exception as exc:
            await abort_for(context, exc)
        return au.ConsistencyProof(
            old_checkpoint=checkpoint_to_proto(answer.old),
            new_checkpoint=checkpoint_to_proto(answer.new),
            hashes=answer.hashes,
        )

    async def ExportRecords(  # noqa: N802
        self, request: au.ExportRecordsRequest, context: Context
    ) -> AsyncIterator[au.ExportChunk]:
        try:
            fmt = request.format or "jsonl"
            if fmt not in get_args(ExportFormat):
                raise InvalidRequest(f"export format must be jsonl or csv, got {fmt!r}")
            query = query_from_proto(request.filter, oldest_first=True)
            pending = b""
            async for piece in self._reader.export(caller_of(context), query, fmt):  # type: ignore[arg-type]
                if isinstance(piece, str):
                    if pending:
                        yield au.ExportChunk(data=pending)
                    yield au.ExportChunk(manifest=piece)
                    return
                pending += piece
                if len(pending) >= EXPORT_CHUNK:
                    yield au.ExportChunk(data=pending)
                    pending = b""
        except Exception as exc:
            await abort_for(context, exc)
