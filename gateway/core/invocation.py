"""One cross-domain call as it moves through the request chain."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.core.audit_event import AuditEvent, AuditReceipt
from gateway.core.decision import Decision
from gateway.core.models import (
    CapabilitySpec,
    CapabilityTarget,
    ContextRef,
    Payload,
    Principal,
    TaskUpdate,
)
from gateway.core.task import TaskInfo
from gateway.errors import GatewayError


@dataclass(slots=True)
class Invocation:
    """The request, and what the chain's steps learn about it.

    Steps fill `capability`, `task` and `decision` in order; later steps may
    rely on what earlier ones set (see `require_task`).
    """

    caller: Principal
    target: CapabilityTarget
    input: Payload
    context_refs: tuple[ContextRef, ...] = ()
    idempotency_key: str = ""
    trace_id: str = ""
    parent_task_id: str = ""
    claimed_call_path: tuple[str, ...] = ()
    timeout: float | None = None
    """Seconds left on the caller's deadline; None when the caller set none."""
    detached: bool = False
    """A long-running task (SubmitTask): it outlives the gateway's stream to the domain."""

    capability: CapabilitySpec | None = None
    task: TaskInfo | None = None
    decision: Decision | None = None
    started_ns: int = field(default=0)
    replayed: bool = False
    """True when an idempotency key's stored outcome answered instead of a new run."""
    dispatched: bool = False
    """True once the request was handed to a domain (it may have acted on it)."""
    fallback_from: CapabilityTarget | None = None
    """The capability first asked for, when a fallback took over (`target` is the fallback)."""
    fallback_reason: str = ""
    receipts: list[AuditReceipt] = field(default_factory=list)
    """Where the audit log put this call's records (returned to the caller)."""
    endpoints: list[str] = field(default_factory=list)
    """Endpoints the router sent the task to, in order (retries add more); audited."""
    context_events: list[AuditEvent] = field(default_factory=list)
    """Records of the context attached to the task, written with its request record."""

    def require_task(self) -> TaskInfo:
        """The task the chain created; a programming error if asked for too early."""
        if self.task is None:
            raise RuntimeError("the task is created by the call-chain step; it has not run yet")
        return self.task

    def require_capability(self) -> CapabilitySpec:
        """The resolved capability; a programming error if asked for too early."""
        if self.capability is None:
            raise RuntimeError("the capability is resolved by the resolve step; it has not run yet")
        return self.capability


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ended: the final update, or the error that stopped it."""

    final: TaskUpdate | None = None
    error: GatewayError | None = None
    duration_us: int = 0

    @property
    def label(self) -> str:
        """Short outcome for logs and audit: the task state or the error class."""
        if self.final is not None:
            return str(self.final.state)
        if self.error is not None:
            return type(self.error).__name__
        return "interrupted"
