"""Which transport failures mean "the endpoint did not prove its identity"."""

from __future__ import annotations

import grpc
import pytest

from gateway.services.domain_transport import _identity_failure

PREFIX = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:4242: "


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        # What grpcio 1.85 reports for each case (tests/integration/.../test_identity_mtls.py
        # produces them for real).
        (
            "Custom verification check failed with error: UNAUTHENTICATED: "
            "Hostname Verification Check failed.",
            "certificate of another identity",
        ),
        ("Peer name risk.domain.fedgate.local is not in peer certificate", "another identity"),
        (
            "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL "
            "routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: unable to get local issuer",
            "not issued by the federation CA",
        ),
        (
            "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: "
            "error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER",
            "TLS handshake failed",
        ),
    ],
)
def test_handshake_failures_are_identity_failures(details: str, reason: str) -> None:
    assert reason in _identity_failure(_error(grpc.StatusCode.UNAVAILABLE, PREFIX + details))


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (
            grpc.StatusCode.UNAVAILABLE,
            PREFIX + "Failed to connect to remote host: Connection refused",
        ),
        (grpc.StatusCode.UNAVAILABLE, "Socket closed"),
        (grpc.StatusCode.INTERNAL, "Hostname Verification Check failed."),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
    ],
)
def test_other_failures_are_not(code: grpc.StatusCode, details: str) -> None:
    assert _identity_failure(_error(code, details)) == ""
