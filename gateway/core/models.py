"""Core data types of the federation: domains, endpoints, capabilities, tasks.

Frozen dataclasses, free of wire types. The service layer converts protobuf
messages to these in `gateway.services.convert` and back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

JSONObject = Mapping[str, Any]


class Classification(enum.IntEnum):
    """Data sensitivity, ordered: a higher value is more sensitive."""

    PUBLIC = 1
    INTERNAL = 2
    CONFIDENTIAL = 3
    RESTRICTED = 4


class TaskState(enum.StrEnum):
    """A2A-aligned task states."""

    SUBMITTED = "submitted"
    WORKING = "working"
    INPUT_REQUIRED = "input-required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        """True for states a task never leaves."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED}
)


@dataclass(frozen=True, slots=True)
class CapabilitySpec:
    """One capability in a domain's catalog."""

    name: str
    version: str
    description: str = ""
    input_schema: JSONObject = field(default_factory=dict)
    output_schema: JSONObject = field(default_factory=dict)
    idempotent: bool = False
    default_timeout: timedelta = timedelta(seconds=30)
    accepts: tuple[Classification, ...] = ()
    returns: tuple[Classification, ...] = ()
    fallback: CapabilityTarget | None = None
    """Capability that serves calls when this one is unavailable."""


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One registered replica of a domain's orchestrator and its lease."""

    domain: str
    address: str
    lease_id: str
    lease_expires_at: datetime
    registered_at: datetime

    def live(self, now: datetime) -> bool:
        """True while the lease has not run out."""
        return self.lease_expires_at > now


@dataclass(frozen=True, slots=True)
class DomainRecord:
    """A registered domain: owner, catalog and endpoints."""

    name: str
    owner: str
    registered_at: datetime
    updated_at: datetime
    capabilities: tuple[CapabilitySpec, ...] = ()
    endpoints: tuple[EndpointRecord, ...] = ()

    def capability(self, name: str, version: str = "") -> CapabilitySpec | None:
        """The named capability (any version if `version` is empty), or None."""
        for cap in self.capabilities:
            if cap.name == name and (not version or cap.version == version):
                return cap
        return None

    def live_endpoints(self, now: datetime) -> tuple[EndpointRecord, ...]:
        """Endpoints whose lease holds at `now`."""
        return tuple(e for e in self.endpoints if e.live(now))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a domain and optionally an agent acting inside it."""

    domain: str
    agent: str = ""

    def __str__(self) -> str:
        return f"{self.domain}/{self.agent}" if self.agent else self.domain


@dataclass(frozen=True, slots=True)
class Payload:
    """A task input or output: a JSON value, or bytes with a content type."""

    json: JSONObject | None = None
    data: bytes | None = None
    content_type: str = ""

    @property
    def size(self) -> int:
        """Approximate size in bytes (exact for `data`)."""
        return len(self.data) if self.data is not None else 0


@dataclass(frozen=True, slots=True)
class CapabilityTarget:
    """`domain/name@version` as requested by a caller (version may be empty)."""

    domain: str
    name: str
    version: str = ""

    def __str__(self) -> str:
        ref = f"{self.domain}/{self.name}"
        return f"{ref}@{self.version}" if self.version else ref


@dataclass(frozen=True, slots=True)
class ContextRef:
    """A reference to a shared context item: key and version (0 = latest)."""

    key: str
    version: int = 0


DEADLINE_EXCEEDED_CODE = "deadline_exceeded"
"""`TaskError.code` a domain reports when the task ran out of time."""


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why a task failed."""

    code: str
    message: str
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """One event of a running task, as the target domain reported it."""

    state: TaskState
    message: str = ""
    output: Payload | None = None
    error: TaskError | None = None
    final: bool = False
    sequence: int = 0
    """Position in the domain's event stream; 0 for updates the gateway makes itself."""
