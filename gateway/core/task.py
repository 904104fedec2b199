"""A task as the gateway tracks it while it runs, and the call chain it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gateway.core.context.items import ContextView
from gateway.core.models import CapabilityTarget, ContextRef, Principal


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """Identity and routing facts of one cross-domain invocation."""

    task_id: str
    trace_id: str
    caller: Principal
    target: CapabilityTarget
    parent_task_id: str = ""
    deadline: datetime | None = None
    idempotency_key: str = ""
    context_refs: tuple[ContextRef, ...] = ()
    depth: int = 1
    call_path: tuple[str, ...] = field(default=())
    """`domain/capability` of every task from the root to this one, inclusive."""
    context: tuple[ContextView, ...] = ()
    """The referenced context items as the target domain may see them (set by the gateway)."""
    context_grant: str = ""
    """Signed grant for the target's context write-backs (see `gateway.core.context.grant`)."""
    detached: bool = False
    """A long-running task (SubmitTask): the domain keeps it when the gateway's stream ends."""
