from __future__ import annotations

import grpc
import pytest

from gateway import errors
from gateway.services.status_map import InternalError, error_for, status_for


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.SchemaViolation("bad", "$.a"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.DomainNotFound("x"), grpc.StatusCode.NOT_FOUND),
        (errors.CapabilityNotFound("x"), grpc.StatusCode.NOT_FOUND),
        (errors.LeaseNotFound("x"), grpc.StatusCode.NOT_FOUND),
        (errors.PayloadTooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.CallChainRefused("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.VersionConflict("x", 3), grpc.StatusCode.ABORTED),
        (errors.PolicyDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.DomainUnavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.DeadlineExceeded("x"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (errors.StoreUnavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.AuditUnavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (ValueError("boom"), grpc.StatusCode.INTERNAL),
    ],
)
def test_every_error_has_its_status(exc: BaseException, code: grpc.StatusCode) -> None:
    assert status_for(exc) is code


def test_every_gateway_error_class_is_mapped() -> None:
    def walk(cls: type[errors.GatewayError]) -> list[type[errors.GatewayError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in walk(sub))]

    # The gateway's own tree; client-side additions (SDK, InternalError) never reach it.
    for cls in walk(errors.GatewayError)[1:]:
        if cls.__module__ != errors.__name__:
            continue
        assert status_for(cls.__new__(cls)) is not grpc.StatusCode.INTERNAL, cls


def test_statuses_map_back_to_the_same_tree() -> None:
    assert isinstance(error_for(grpc.StatusCode.NOT_FOUND, "m"), errors.NotFound)
    assert isinstance(error_for(grpc.StatusCode.PERMISSION_DENIED, "m"), errors.PolicyDenied)
    unknown = error_for(grpc.StatusCode.DATA_LOSS, "")
    assert isinstance(unknown, InternalError)
    assert unknown.message == "DATA_LOSS"
