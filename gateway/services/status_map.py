"""The one table from gateway errors to gRPC status codes, and back.

Lookup walks the exception's class hierarchy, so a subclass inherits its
parent's code unless it has its own row. Anything not in the table is an
internal error: logged with its trace id, reported as INTERNAL without details.
"""

from __future__ import annotations

import grpc

from gateway import errors

STATUS_OF: dict[type[errors.GatewayError], grpc.StatusCode] = {
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.VersionConflict: grpc.StatusCode.ABORTED,
    errors.PolicyDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.DomainUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.TaskCanceled: grpc.StatusCode.CANCELLED,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.AuditUnavailable: grpc.StatusCode.UNAVAILABLE,
}

ERROR_OF: dict[grpc.StatusCode, type[errors.GatewayError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidRequest,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.ABORTED: errors.VersionConflict,
    grpc.StatusCode.PERMISSION_DENIED: errors.PolicyDenied,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: errors.DomainUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.CANCELLED: errors.TaskCanceled,
}
"""Reverse mapping used by clients (SDK, CLI) to raise the same exception tree."""


class InternalError(errors.GatewayError):
    """Raised on the client side for INTERNAL or unmapped statuses."""


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status for `exc`; INTERNAL for anything not in the table."""
    for cls in type(exc).__mro__:
        code = STATUS_OF.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def error_for(code: grpc.StatusCode, message: str) -> errors.GatewayError:
    """The client-side exception for a status received from the gateway."""
    return ERROR_OF.get(code, InternalError)(message or code.name)
