"""IdentityInterceptor wraps each method's handler once, and again if gRPC's handler changes."""

from __future__ import annotations

from typing import Any

import grpc

from gateway.core.audit_event import AuditEvent, AuditReceipt
from gateway.services.identity import IdentityInterceptor


class _NoAudit:
    async def record(self, events: list[AuditEvent]) -> list[AuditReceipt]:
        return []


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def _behavior(request: Any, context: Any) -> Any:
    return request


async def test_a_method_handler_is_wrapped_once_and_rewrapped_when_it_changes() -> None:
    interceptor = IdentityInterceptor(_NoAudit(), trust_domain=None)
    first: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(_behavior)
    second: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(_behavior)
    current = first

    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        return current

    a = await interceptor.intercept_service(continuation, _Details("/svc/A"))
    again = await interceptor.intercept_service(continuation, _Details("/svc/A"))
    other = await interceptor.intercept_service(continuation, _Details("/svc/B"))
    assert a is not None
    assert a is again
    assert a.unary_unary is not first.unary_unary  # wrapped, not passed through
    assert other is not a
    current = second
    changed = await interceptor.intercept_service(continuation, _Details("/svc/A"))
    assert changed is not None
    assert changed is not a
