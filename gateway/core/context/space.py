"""The shared context space's use cases: governed, versioned, audited reads and writes.

Every operation asks the policy (`ContextAccess`), records what it did through the
audit sink before it answers (strict mode: the answer waits for the records), and
runs store reads in the store's worker threads. A write goes to the audit trail as an
`AuditedWrite`: the trail runs it in the transaction that appends its records. Reads
that the policy or the context-flow rules refuse are answered with redacted views,
never with an error: the reader learns that the item exists, its classification and
owner, not its value.

    put/delete ─▶ decide context.write ─▶ one commit: decision record, versioned
               write, outcome record ─▶ answer
    get/list/history/watch ─▶ store ─▶ per item: decide read + flow ─▶ audit ─▶ views
    attach (Invoke) ─▶ per ref: store ─▶ decide for the target domain ─▶ views + records
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from gateway.core.audit_event import AuditEvent
from gateway.core.audited_write import AuditedWrite, record_write
from gateway.core.clock import Clock, utcnow
from gateway.core.context.access import DECLARATION_RULE, ContextAccess
from gateway.core.context.changes import ChangeSignals
from gateway.core.context.grant import GrantSigner, WriteGrant
from gateway.core.context.items import (
    ContextItem,
    ContextView,
    ContextWrite,
    check_key,
    check_prefix,
    check_trace,
    classification_name,
)
from gateway.core.context.ports import ContextStore
from gateway.core.decision import Decision
from gateway.core.models import CapabilitySpec, Classification, ContextRef, Principal
from gateway.core.ports import AuditSink
from gateway.core.task import TaskInfo
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PolicyDenied,
    VersionConflict,
)

T = TypeVar("T")

DEFAULT_CLASSIFICATION = Classification.INTERNAL
"""What a write outside any task is classified as when its writer names nothing."""

WATCH_BATCH = 100
"""Most changes one look at the store returns to a Watch."""


@dataclass(frozen=True, slots=True)
class ContextLimits:
    """Bounds on what writers may ask for."""

    default_ttl: float = 86_400.0
    max_ttl: float = 30 * 86_400.0
    max_value_bytes: int = 256 * 1024
    watch_poll_interval: float = 1.0


class ContextSpace:
    """Put, Get, List, History, Delete and Watch of context items, and Invoke attachments."""

    def __init__(
        self,
        store: ContextStore,
        access: ContextAccess,
        audit: AuditSink,
        grants: GrantSigner,
        *,
        executor: Executor | None = None,
        limits: ContextLimits | None = None,
        signals: ChangeSignals | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self.access = access
        self._audit = audit
        self.grants = grants
        self._executor = executor
        self._limits = limits or ContextLimits()
        self.signals = signals if signals is not None else ChangeSignals()
        self._clock = clock

    # --- writes -----------------------------------------------------------------

    async def put(self, writer: Principal, write: ContextWrite) -> ContextItem:
        """Writes the next version of an item the writer owns (or creates it).

        Raises:
            InvalidRequest: A bad key, trace, TTL or value.
            PayloadTooLarge: The value is above `max_value_bytes`.
            PolicyDenied: The policy refuses the write, another domain owns the item,
                or a task's write-back is above its capability's declaration (all
                recorded).
            VersionConflict: `expected_version` is not the current version (recorded).
        """
        check_trace(write.trace_id)
        check_key(write.key)
        self._check_value(write.value)
        ttl = self._ttl(write.ttl_seconds)
        now = self._clock()
        grant = self._grant_of(writer, write, now)
        classification = write.classification or (
            grant.classification if grant is not None else DEFAULT_CLASSIFICATION
        )
        task_id = grant.task_id if grant is not None else write.task_id
        asked = {"expected_version": write.expected_version}
        decision = self.access.may_write(writer, write.key)
        if decision.allowed and grant is not None and classification > grant.classification:
            decision = Decision(
                allowed=False,
                reason=f"{grant.capability} declares context up to "
                f"{classification_name(grant.classification)}; a "
                f"{classification_name(classification)} write-back is refused",
                rule=DECLARATION_RULE,
                policy_version=decision.policy_version,
            )
            outcome = "refused"
        else:
            outcome = "denied"
        if not decision.allowed:
            await self._record(
                self._refusal_event(writer, write, decision, outcome, classification, task_id)
            )
            raise PolicyDenied(decision.reason)
        attributes: dict[str, object] = {**asked, "ttl_seconds": ttl.total_seconds()}
        item = await self._write(
            AuditedWrite(
                before=[
                    self.access.intent_event(
                        writer,
                        trace_id=write.trace_id,
                        key=write.key,
                        decision=decision,
                        operation="put",
                        classification=classification,
                        task_id=task_id,
                        attributes=asked,
                    )
                ],
                apply=lambda tx: self._store.put(
                    trace_id=write.trace_id,
                    key=write.key,
                    value=write.value,
                    classification=classification,
                    owner=writer.domain,
                    writer=str(writer),
                    expected_version=write.expected_version,
                    expires_at=now + ttl,
                    now=now,
                    within=tx,
                ),
                after=lambda item: [
                    self.access.write_event(
                        writer,
                        trace_id=write.trace_id,
                        key=write.key,
                        decision=decision,
                        outcome="written",
                        item=item,
                        task_id=task_id,
                        attributes=attributes,
                    )
                ],
                refused=lambda exc: [
                    self._refused_write_event(writer, write, decision, exc, classification, task_id)
                ],
            )
        )
        self.signals.notify(write.trace_id)
        return item

    async def delete(
        self, writer: Principal, trace_id: str, key: str, expected_version: int | None = None
    ) -> ContextItem:
        """Deletes an item its owner wrote (a tombstone version); recorded.

        Raises:
            NotFound: No such live item.
            PolicyDenied: Not the owner, or the policy refuses the write.
            VersionConflict: `expected_version` is not the current version.
        """
        check_trace(trace_id)
        check_key(key)
        decision = self.access.may_write(writer, key)
        base = ContextWrite(
            trace_id=trace_id, key=key, value=None, expected_version=expected_version
        )
        if not decision.allowed:
            await self._record(self._refusal_event(writer, base, decision, "denied", None, ""))
            raise PolicyDenied(decision.reason)
        now = self._clock()
        asked: dict[str, object] = {"expected_version": expected_version}
        item = await self._write(
            AuditedWrite(
                before=[
                    self.access.intent_event(
                        writer,
                        trace_id=trace_id,
                        key=key,
                        decision=decision,
                        operation="delete",
                        attributes=asked,
                    )
                ],
                apply=lambda tx: self._store.delete(
                    trace_id=trace_id,
                    key=key,
                    owner=writer.domain,
                    writer=str(writer),
                    expected_version=expected_version,
                    now=now,
                    within=tx,
                ),
                after=lambda item: [
                    self.access.write_event(
                        writer,
                        trace_id=trace_id,
                        key=key,
                        decision=decision,
                        outcome="deleted",
                        item=item,
                        attributes=asked,
                    )
                ],
                refused=lambda exc: [
                    self._refused_write_event(writer, base, decision, exc, None, "")
                ],
            )
        )
        self.signals.notify(trace_id)
        return item

    # --- reads ------------------------------------------------------------------

    async def get(
        self, reader: Principal, trace_id: str, key: str, version: int = 0
    ) -> ContextView:
        """One item (latest or a version) as `reader` may see it; recorded.

        Raises:
            NotFound: No such item or version.
        """
        check_trace(trace_id)
        check_key(key)
        if version < 0:
            raise InvalidRequest(f"invalid version {version}: 0 means the latest, else 1 or more")
        now = self._clock()
        item = await self._blocking(
            lambda: self._store.get(trace_id=trace_id, key=key, version=version, now=now)
        )
        if item is None:
            at = f" version {version}" if version else ""
            raise NotFound(f"context item {key!r}{at} does not exist in trace {trace_id}")
        (view,) = await self._views(reader, [item], via="get")
        return view

    async def list_items(
        self, reader: Principal, trace_id: str, prefix: str = ""
    ) -> list[ContextView]:
        """The live items of a trace (by key prefix) as `reader` may see them; recorded."""
        check_trace(trace_id)
        check_prefix(prefix)
        now = self._clock()
        items = await self._blocking(
            lambda: self._store.list_items(trace_id=trace_id, prefix=prefix, now=now)
        )
        return await self._views(reader, items, via="list")

    async def history(self, reader: Principal, trace_id: str, key: str) -> list[ContextView]:
        """Every stored version of an item, oldest first, as `reader` may see them."""
        check_trace(trace_id)
        check_key(key)
        items = await self._blocking(lambda: self._store.history(trace_id=trace_id, key=key))
        if not items:
            raise NotFound(f"context item {key!r} has no history in trace {trace_id}")
        return await self._views(reader, items, via="history")

    async def watch(
        self, reader: Principal, trace_id: str, after_revision: int = 0
    ) -> AsyncGenerator[ContextView, None]:
        """Every change of a trace after `after_revision`, then each new one as it happens.

        Each view carries its trace revision (`view.item.revision`): a watcher that
        reconnects with the last revision it saw misses nothing and sees nothing twice.
        Runs until the caller stops iterating.
        """
        check_trace(trace_id)
        if after_revision < 0:
            raise InvalidRequest("after_revision must be 0 or more")
        after = after_revision
        with self.signals.watching(trace_id):
            while True:
                signal = self.signals.signal(trace_id)  # before looking: see changes.py
                changes = await self._blocking(
                    functools.partial(
                        self._store.changes,
                        trace_id=trace_id,
                        after_revision=after,
                        limit=WATCH_BATCH,
                    )
                )
                if changes:
                    for view in await self._views(reader, changes, via="watch"):
                        after = view.item.revision
                        yield view
                    continue
                await ChangeSignals.wait(signal, self._limits.watch_poll_interval)

    async def attach(
        self, task: TaskInfo, capability: CapabilitySpec, refs: Sequence[ContextRef]
    ) -> tuple[list[ContextView], list[AuditEvent]]:
        """Resolves an Invoke's context refs for the domain the task goes to.

        Each item is decided for the target domain (policy, flow, and the
        capability's `accepts`); allowed items travel whole, the others redacted.

        Returns:
            The views to attach and their audit records (the caller records them
            together with the task's request record, before anything is forwarded).

        Raises:
            NotFound: A ref names no item (or version) of the task's trace.
        """
        now = self._clock()
        for ref in refs:
            check_key(ref.key)
        items = await self._blocking(
            lambda: [
                self._store.get(trace_id=task.trace_id, key=r.key, version=r.version, now=now)
                for r in refs
            ]
        )
        target = Principal(task.target.domain)
        views: list[ContextView] = []
        events: list[AuditEvent] = []
        for ref, item in zip(refs, items, strict=True):
            if item is None:
                at = f" version {ref.version}" if ref.version else ""
                raise NotFound(
                    f"context ref {ref.key!r}{at} names no item of trace {task.trace_id}"
                )
            view, decision = self.access.read(target, item, accepts=capability.accepts)
            views.append(view)
            events.append(
                self.access.read_event(
                    target,
                    view,
                    decision,
                    via="invoke",
                    actor=task.caller,
                    task_id=task.task_id,
                    parent_task_id=task.parent_task_id,
                    capability=task.target.name,
                )
            )
        return views, events

    def grant_for(self, task: TaskInfo, capability: CapabilitySpec) -> str:
        """The write grant a task's domain sends with its write-backs."""
        declared = max(capability.returns, default=Classification.PUBLIC)
        deadline = task.deadline or self._clock() + timedelta(seconds=self._limits.default_ttl)
        return self.grants.issue(
            WriteGrant(
                task_id=task.task_id,
                trace_id=task.trace_id,
                domain=task.target.domain,
                capability=str(task.target),
                classification=declared,
                # A little past the deadline: the last write-back races the answer.
                expires_at=deadline + timedelta(seconds=60),
            )
        )

    async def purge_expired(self) -> int:
        """Removes expired items from the store; returns how many."""
        now = self._clock()
        return await self._blocking(lambda: self._store.purge_expired(now=now))

    # --- parts ------------------------------------------------------------------

    async def _views(
        self, reader: Principal, items: Sequence[ContextItem], *, via: str
    ) -> list[ContextView]:
        views: list[ContextView] = []
        events: list[AuditEvent] = []
        for item in items:
            view, decision = self.access.read(reader, item)
            views.append(view)
            events.append(self.access.read_event(reader, view, decision, via=via))
        if events:
            await self._audit.record(events)
        return views

    async def _record(self, event: AuditEvent) -> None:
        await self._audit.record([event])

    async def _write(self, write: AuditedWrite[ContextItem]) -> ContextItem:
        """The write and its records, in one transaction when the audit sink can."""
        return await record_write(self._audit, write, self._blocking)

    def _refused_write_event(
        self,
        writer: Principal,
        write: ContextWrite,
        decision: Decision,
        error: GatewayError,
        classification: Classification | None,
        task_id: str,
    ) -> AuditEvent:
        """The record of a write the store refused: a stale version, or another's item."""
        if isinstance(error, VersionConflict):
            # The policy allowed the write; the store's reason is what the record tells.
            stale = dataclasses.replace(decision, reason=error.message)
            return self._refusal_event(
                writer,
                write,
                stale,
                "stale",
                classification,
                task_id,
                {"current_version": error.current_version},
            )
        if isinstance(error, NotFound):
            missing = Decision(False, error.message, "not-found", decision.policy_version)
            return self._refusal_event(writer, write, missing, "missing", classification, task_id)
        owned = Decision(False, error.message, "owner-only", decision.policy_version)
        return self._refusal_event(writer, write, owned, "denied", classification, task_id)

    def _refusal_event(
        self,
        writer: Principal,
        write: ContextWrite,
        decision: Decision,
        outcome: str,
        classification: Classification | None,
        task_id: str,
        details: dict[str, object] | None = None,
    ) -> AuditEvent:
        """The record of a write that did not happen; the decision's reason says why."""
        return self.access.write_event(
            writer,
            trace_id=write.trace_id,
            key=write.key,
            decision=decision,
            outcome=outcome,
            classification=classification,
            task_id=task_id,
            attributes={
                "expected_version": write.expected_version,
                "reason": decision.reason,
                **(details or {}),
            },
        )

    def _grant_of(self, writer: Principal, write: ContextWrite, now: datetime) -> WriteGrant | None:
        if not write.grant:
            return None
        grant = self.grants.verify(write.grant, now=now)
        if grant.domain != writer.domain or grant.trace_id != write.trace_id:
            raise PolicyDenied(
                f"the write grant of task {grant.task_id} is for {grant.domain} in trace "
                f"{grant.trace_id}, not {writer.domain} in trace {write.trace_id}"
            )
        return grant

    def _check_value(self, value: object) -> None:
        try:
            size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"context value is not JSON: {exc}") from exc
        if size > self._limits.max_value_bytes:
            raise PayloadTooLarge(
                f"context value of {size} bytes is above the limit of "
                f"{self._limits.max_value_bytes} bytes"
            )

    def _ttl(self, seconds: float | None) -> timedelta:
        ttl = self._limits.default_ttl if seconds is None else seconds
        if not 0 < ttl <= self._limits.max_ttl:
            raise InvalidRequest(
                f"invalid ttl {ttl:g}s: more than 0 and at most {self._limits.max_ttl:g}s"
            )
        return timedelta(seconds=ttl)

    async def _blocking(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
