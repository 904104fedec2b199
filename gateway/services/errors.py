"""Turns exceptions into gRPC statuses at the service boundary: never a stack trace out."""

from __future__ import annotations

import logging
import uuid
from typing import NoReturn

import grpc

from gateway.errors import GatewayError, QuotaExceeded
from gateway.services import metadata
from gateway.services.status_map import status_for

log = logging.getLogger(__name__)


async def abort_for(
    context: grpc.aio.ServicerContext[object, object], exc: BaseException, trace_id: str = ""
) -> NoReturn:
    """Aborts the RPC with the status the error table gives for `exc`.

    Unknown exceptions are logged with a trace id and reported as INTERNAL
    without details, so internals never leak to callers.
    """
    if isinstance(exc, QuotaExceeded):
        # The retry-after hint travels as metadata too, for clients that back off by it.
        context.set_trailing_metadata(
            ((metadata.RETRY_AFTER_MS, str(max(1, round(exc.retry_after * 1000)))),)
        )
    if isinstance(exc, GatewayError):
        await context.abort(status_for(exc), exc.message)
    trace = trace_id or uuid.uuid4().hex
    log.error("internal error (trace %s)", trace, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace {trace})")
    raise AssertionError("unreachable: context.abort raises")
