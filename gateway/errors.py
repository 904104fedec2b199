"""The gateway's exception tree. Names say what the caller should do.

    GatewayError                       base; never raised itself
    ├── InvalidRequest                 fix the request (INVALID_ARGUMENT)
    │   └── SchemaViolation            input does not match the capability's schema
    ├── NotFound                       the name is unknown (NOT_FOUND)
    │   ├── DomainNotFound
    │   ├── CapabilityNotFound
    │   ├── LeaseNotFound              re-register, the lease is gone
    │   └── TaskNotFound               no such task (or not one the caller may see)
    ├── ResourceExhausted              a limit was hit (RESOURCE_EXHAUSTED)
    │   ├── PayloadTooLarge            send less
    │   └── QuotaExceeded              slow down; retry after the hint
    ├── FailedPrecondition             not possible in the current state (FAILED_PRECONDITION)
    │   ├── CallChainRefused           nesting too deep or a cycle
    │   └── TaskNotWaiting             the task is not waiting for input (respond later, or not)
    ├── VersionConflict                read the current version and retry (ABORTED)
    ├── PolicyDenied                   ask for the permission (PERMISSION_DENIED)
    ├── Unauthenticated                present a valid identity (UNAUTHENTICATED)
    ├── DomainUnavailable              no live endpoint / domain unreachable (UNAVAILABLE)
    ├── DeadlineExceeded               the deadline ran out (DEADLINE_EXCEEDED)
    ├── TaskCanceled                   the caller or domain canceled (CANCELLED)
    ├── StoreUnavailable               the database is down; retry later (UNAVAILABLE)
    └── AuditUnavailable               the audit trail cannot record; fail closed (UNAVAILABLE)

The service layer maps these to gRPC status codes in one table
(`gateway.services.status_map`); core code raises them and never sees gRPC.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway reports to a caller on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(GatewayError):
    """The request is malformed or names something invalid."""


class SchemaViolation(InvalidRequest):
    """The input does not satisfy the capability's JSON Schema."""

    def __init__(self, message: str, json_path: str) -> None:
        super().__init__(f"input does not match the schema at {json_path}: {message}")
        self.json_path = json_path


class NotFound(GatewayError):
    """A named thing does not exist."""


class DomainNotFound(NotFound):
    """No domain of that name is registered."""


class CapabilityNotFound(NotFound):
    """The domain does not offer that capability (or that version)."""


class LeaseNotFound(NotFound):
    """The lease is unknown or expired; the endpoint must register again."""


class ResourceExhausted(GatewayError):
    """A size or rate limit was hit."""


class PayloadTooLarge(ResourceExhausted):
    """The message is larger than the configured maximum."""


class QuotaExceeded(ResourceExhausted):
    """The caller exceeded a rate limit; `retry_after` says when a call would fit again."""

    retryable = True

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TaskNotFound(NotFound):
    """No stored task has that id, or the caller may not see it."""


class FailedPrecondition(GatewayError):
    """The request is valid but not possible in the current state."""


class CallChainRefused(FailedPrecondition):
    """A nested call would exceed the depth limit or re-enter a capability (a cycle)."""


class VersionConflict(GatewayError):
    """A context write named a version that is no longer current (optimistic concurrency).

    `current_version` is the item's version now (0 when it does not exist); read it,
    decide again, and write with that version as the expected one.
    """

    def __init__(self, message: str, current_version: int = 0) -> None:
        super().__init__(message)
        self.current_version = current_version


class TaskNotWaiting(FailedPrecondition):
    """An answer was sent to a task that is not waiting for input."""


class PolicyDenied(GatewayError):
    """The policy does not allow this call; the message names the missing permission."""


class Unauthenticated(GatewayError):
    """The caller's identity is missing or does not hold."""


class DomainUnavailable(GatewayError):
    """The target has no live endpoint or could not be reached."""

    retryable = True


class DeadlineExceeded(GatewayError):
    """The call's deadline passed before it finished."""


class TaskCanceled(GatewayError):
    """The task was canceled."""


class StoreUnavailable(GatewayError):
    """The gateway's database cannot be reached; the call was not acted on."""

    retryable = True


class AuditUnavailable(GatewayError):
    """The audit trail cannot durably record; the gateway fails closed."""

    retryable = True
