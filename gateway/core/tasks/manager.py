"""The task manager: long-running tasks through the request chain, stored, resumable.

`submit` runs the same chain as Invoke (`InvokePipeline`) in a background task and
answers as soon as the chain accepted the call (its SUBMITTED update): the task is
stored first, so its id is never handed out for a task that could be lost. Every
later update is stored as an event; the final one only after the chain recorded
the outcome in the audit trail.

Ownership: every unfinished task is held by one gateway instance under a lease
(`TaskConfig.lease_ttl`) that the instance renews while it follows the task. At
start, and periodically, an instance adopts the unfinished tasks whose owner's
lease ran out (and at start its own, left from before a restart) and re-attaches
to them on the domain (`DomainLink.attach`) from the last stored position. A task
the domain no longer knows, or that cannot be reached within
`TaskConfig.reattach_grace`, ends `failed` with the reason: nothing is left
`working` forever, and nothing is run a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.clock import Clock, utcnow
from gateway.core.decision import Action, Decision
from gateway.core.idempotency import IdempotencyStore, StoredOutcome, request_hash
from gateway.core.invocation import Invocation
from gateway.core.models import Payload, Principal, TaskError, TaskState, TaskUpdate
from gateway.core.pipeline import InvokePipeline
from gateway.core.ports import AuditSink, PolicyDecider
from gateway.core.registry import Registry
from gateway.core.tasks.ports import DomainLink, TaskStore
from gateway.core.tasks.records import StoredEvent, StoredTask, TaskQuery
from gateway.errors import (
    DomainUnavailable,
    GatewayError,
    InvalidRequest,
    PolicyDenied,
    TaskNotFound,
    TaskNotWaiting,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

REATTACH_RETRY = 0.5
"""Seconds between attempts to reach a domain while re-attaching."""

SETTLE_TIMEOUT = 5.0
"""Seconds CancelTask and RespondTask wait for the task to take the change."""


@dataclass(frozen=True, slots=True)
class TaskConfig:
    """How the manager holds and recovers tasks."""

    instance: str
    """This gateway instance's id (stable across restarts of the same instance)."""
    lease_ttl: float = 15.0
    """Seconds an owner's hold on a task lasts unless renewed."""
    default_timeout: float = 3600.0
    """Deadline (seconds) of a task whose caller sets none; it may wait for a human."""
    reattach_grace: float = 30.0
    """Seconds to keep trying to reach a task's domain after a restart before failing it."""
    poll_interval: float = 0.5
    """Seconds between store reads of a watcher whose task another replica follows."""


class _Fenced(Exception):
    """This instance no longer holds the task (adopted elsewhere, or ended)."""


class TaskManager:
    """Submits, follows, answers and cancels long-running tasks; recovers them."""

    def __init__(
        self,
        *,
        pipeline: InvokePipeline,
        store: TaskStore,
        link: DomainLink,
        registry: Registry,
        policy: PolicyDecider,
        audit: AuditSink,
        config: TaskConfig,
        executor: Executor | None = None,
        idempotency: IdempotencyStore | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._pipeline = pipeline
        self._store = store
        self._link = link
        self._registry = registry
        self._policy = policy
        self._audit = audit
        self.config = config
        self._executor = executor
        self._idempotency = idempotency
        self._clock = clock
        self._followers: dict[str, asyncio.Task[None]] = {}
        """Tasks this instance follows now (a driver or a re-attacher), by task id."""
        self._starting: set[asyncio.Task[None]] = set()
        self._cancel_reasons: dict[str, str] = {}
        self._invocations: dict[str, Invocation] = {}
        """The chain's invocation of each task this instance drives (submitted here)."""
        self._changed: dict[str, asyncio.Event] = {}
        self._maintainer: asyncio.Task[None] | None = None

    @property
    def following(self) -> tuple[str, ...]:
        """Ids of the tasks this instance follows now."""
        return tuple(self._followers)

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        """Starts the lease keeper, which first adopts this instance's own tasks."""
        self._maintainer = asyncio.create_task(self._maintain_forever(), name="task-leases")

    async def close(self) -> None:
        """Stops following tasks. They keep running in their domains and their leases
        run out, so this instance after a restart, or another one, re-attaches."""
        running = [t for t in (self._maintainer, *self._followers.values(), *self._starting) if t]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._maintainer = None

    # --- submit -------------------------------------------------------------

    async def submit(self, invocation: Invocation) -> StoredTask:
        """Runs the request chain for a long-running task; returns it once stored.

        Raises the chain's refusals (`PolicyDenied`, `InvalidRequest`, ...) like Invoke.
        The same caller and idempotency key return the task first submitted with it.
        """
        invocation.detached = True
        if invocation.timeout is None:
            invocation.timeout = self.config.default_timeout
        key = invocation.idempotency_key
        if key:
            caller = invocation.caller.domain
            existing = await self._run(lambda: self._store.find_by_key(caller, key))
            if existing is not None:
                if existing.request_hash != request_hash(invocation):
                    raise InvalidRequest(
                        f"idempotency key {key!r} was used for a different request; use a new key"
                    )
                return existing
        accepted: asyncio.Future[StoredTask] = asyncio.get_running_loop().create_future()
        driver = asyncio.create_task(self._drive(invocation, accepted), name="task-driver")
        self._starting.add(driver)
        driver.add_done_callback(self._starting.discard)
        # Shielded: a caller that goes away does not stop a task that was accepted.
        return await asyncio.shield(accepted)

    async def _drive(self, invocation: Invocation, accepted: asyncio.Future[StoredTask]) -> None:
        task_id = ""
        try:
            async with aclosing(self._pipeline.run(invocation)) as updates:
                async for update in updates:
                    if not task_id:
                        stored = await self._create(invocation, update)
                        task_id = stored.task_id
                        current = asyncio.current_task()
                        assert current is not None
                        self._followers[task_id] = current
                        self._invocations[task_id] = invocation
                        if not accepted.done():
                            accepted.set_result(stored)
                        continue
                    await self._append(task_id, update, invocation)
        except _Fenced:
            log.info("task %s: followed by another gateway instance now", task_id)
        except GatewayError as exc:
            if not task_id:
                if not accepted.done():
                    accepted.set_exception(exc)
                return
            await self._fail(task_id, exc, invocation)
        except asyncio.CancelledError:
            reason = self._cancel_reasons.pop(task_id, None)
            if task_id and reason is not None:
                # Canceled before it reached the domain: the chain recorded the end.
                with contextlib.suppress(_Fenced):
                    await self._append(task_id, _canceled(reason), invocation)
                return
            if not accepted.done():
                accepted.cancel()
            raise
        except Exception as exc:
            if not accepted.done():
                accepted.set_exception(exc)
                return
            log.exception("task %s: internal error while following it", task_id)
            await self._fail(task_id, exc, invocation)
        finally:
            self._followers.pop(task_id, None)
            self._invocations.pop(task_id, None)

    async def _create(self, invocation: Invocation, first: TaskUpdate) -> StoredTask:
        task = invocation.require_task()
        now = self._clock()
        if first.final:
            # An idempotency key whose call already ended (through Invoke): the task
            # is stored as it ended, under the first call's id.
            state, owner, lease = first.state, "", None
        else:
            state, owner, lease = TaskState.SUBMITTED, self.config.instance, self._lease_end()
        stored = StoredTask(
            task_id=task.task_id,
            trace_id=task.trace_id,
            caller=invocation.caller,
            target=task.target,
            state=state,
            created_at=now,
            updated_at=now,
            message=first.message,
            output=first.output,
            error=first.error,
            parent_task_id=task.parent_task_id,
            deadline=task.deadline,
            idempotency_key=invocation.idempotency_key,
            request_hash=request_hash(invocation) if invocation.idempotency_key else "",
            depth=task.depth,
            call_path=task.call_path,
            last_sequence=1,
            owner=owner,
            lease_expires_at=lease,
        )
        event = StoredEvent(
            task_id=task.task_id,
            sequence=1,
            state=state,
            at=now,
            message=first.message,
            output=first.output,
            error=first.error,
            final=first.final,
        )
        return await self._run(lambda: self._store.create(stored, event))

    # --- reading ------------------------------------------------------------

    async def get(self, principal: Principal, task_id: str) -> StoredTask:
        """The task, if `principal` may see it (else `TaskNotFound`)."""
        stored = await self._run(lambda: self._store.get(task_id))
        if stored is None or not self._visible(principal, stored):
            raise TaskNotFound(f"no task {task_id!r} that {principal} may see")
        return stored

    async def list_tasks(self, principal: Principal, query: TaskQuery) -> list[StoredTask]:
        """Tasks `principal` may see that match `query`, newest first."""
        targets = tuple(
            d.name
            for d in self._registry.list_domains()
            if self._may_oversee(principal, d.name, "*")
            or any(self._may_oversee(principal, d.name, c.name) for c in d.capabilities)
        )
        scoped = replace(
            query, visible_callers=(principal.domain,), visible_targets=targets, unrestricted=False
        )
        found = await self._run(lambda: self._store.query(scoped))
        return [t for t in found if self._visible(principal, t)]

    async def watch(
        self, principal: Principal, task_id: str, after: int = 0
    ) -> AsyncIterator[StoredEvent]:
        """Yields the task's events after position `after`, then new ones, until the final.

        A watcher whose task another replica follows reads the store every
        `poll_interval`; one on the following instance is woken at each event.
        """
        await self.get(principal, task_id)
        position = after
        while True:
            changed = self._changed.setdefault(task_id, asyncio.Event())
            events = await self._run(
                lambda p=position: self._store.events(task_id, after=p, limit=100)  # type: ignore[misc]
            )
            for event in events:
                yield event
                position = event.sequence
                if event.final:
                    return
            if events:
                continue
            stored = await self._run(lambda: self._store.get(task_id))
            if stored is None or (stored.terminal and stored.last_sequence <= position):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self.config.poll_interval)

    # --- acting on a task ---------------------------------------------------

    async def cancel(self, principal: Principal, task_id: str, reason: str) -> StoredTask:
        """Asks the task to stop; only the domain that submitted it may."""
        stored = await self.get(principal, task_id)
        allowed = stored.caller.domain == principal.domain
        await self._record_decision(
            principal,
            stored,
            "cancel",
            Decision(
                allowed=allowed,
                reason=f"{principal} may not cancel task {task_id}: only its caller "
                f"domain {stored.caller.domain!r} may",
                rule="the caller domain of a task may cancel it",
            ),
        )
        if not allowed:
            raise PolicyDenied(
                f"{principal} may not cancel task {task_id}: only the domain that submitted "
                f"it ({stored.caller.domain}) may"
            )
        if stored.terminal:
            return stored
        reason = reason or f"canceled by {principal}"
        invocation = self._invocations.get(task_id)
        endpoint = stored.endpoint
        if not endpoint and invocation is not None and invocation.endpoints:
            endpoint = invocation.endpoints[-1]  # sent there, not reported started yet
        found = False
        if endpoint:
            found = await self._link.cancel_task(endpoint, stored.target.domain, task_id, reason)
        follower = self._followers.get(task_id)
        if not found and invocation is not None and follower is not None:
            # Not running at the domain (yet): stopping the chain here is all it
            # takes, and as an ordinary cancellation it records the task's end.
            invocation.detached = False
            self._cancel_reasons[task_id] = reason
            follower.cancel()
        return await self._settle(task_id, lambda t: t.terminal)

    async def respond(self, principal: Principal, task_id: str, answer: Payload) -> StoredTask:
        """Answers a task waiting for input, if the policy lets `principal` respond."""
        stored = await self.get(principal, task_id)
        decision = self._policy.decide(
            principal, stored.target.domain, stored.target.name, Action.RESPOND
        )
        await self._record_decision(principal, stored, "respond", decision)
        if not decision.allowed:
            raise PolicyDenied(decision.reason)
        if stored.state is not TaskState.INPUT_REQUIRED or not stored.endpoint:
            raise TaskNotWaiting(f"task {task_id} is {stored.state}, not waiting for input")
        await self._link.respond(
            stored.endpoint, stored.target.domain, task_id, answer, responder=str(principal)
        )
        return await self._settle(task_id, lambda t: t.last_sequence > stored.last_sequence)

    async def _settle(self, task_id: str, done: Callable[[StoredTask], bool]) -> StoredTask:
        """The task once `done` holds for it, or as it stands after `SETTLE_TIMEOUT`."""
        loop = asyncio.get_running_loop()
        until = loop.time() + SETTLE_TIMEOUT
        while True:
            changed = self._changed.setdefault(task_id, asyncio.Event())
            stored = await self._run(lambda: self._store.get(task_id))
            assert stored is not None  # tasks are never deleted
            left = until - loop.time()
            if done(stored) or left <= 0:
                return stored
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, self.config.poll_interval))

    # --- storing ------------------------------------------------------------

    async def _append(
        self, task_id: str, update: TaskUpdate, invocation: Invocation | None, endpoint: str = ""
    ) -> None:
        if invocation is not None and invocation.endpoints and update.sequence:
            endpoint = invocation.endpoints[-1]
        now = self._clock()
        ttl = timedelta(seconds=self.config.lease_ttl)
        event = await self._run(
            lambda: self._store.append(
                task_id,
                update,
                owner=self.config.instance,
                now=now,
                endpoint=endpoint,
                lease_ttl=ttl,
            )
        )
        signal = self._changed.pop(task_id, None)
        if signal is not None:
            signal.set()
        if event is None:
            raise _Fenced(task_id)
        if event.final and invocation is None:
            await self._complete_key(task_id)

    async def _fail(
        self, task_id: str, exc: BaseException, invocation: Invocation | None, endpoint: str = ""
    ) -> None:
        message = exc.message if isinstance(exc, GatewayError) else "internal error"
        code = _error_code(exc)
        update = TaskUpdate(
            TaskState.FAILED,
            message,
            error=TaskError(code, message, isinstance(exc, GatewayError) and exc.retryable),
            final=True,
        )
        with contextlib.suppress(_Fenced):
            await self._append(task_id, update, invocation, endpoint)

    async def _complete_key(self, task_id: str) -> None:
        # A re-attached task ended: its idempotency key (claimed by the chain of the
        # gateway that died) now answers Invoke with this outcome too.
        stored = await self._run(lambda: self._store.get(task_id))
        if self._idempotency is None or stored is None or not stored.idempotency_key:
            return
        outcome = StoredOutcome(
            stored.task_id,
            stored.trace_id,
            stored.target,
            TaskUpdate(stored.state, stored.message, stored.output, stored.error, final=True),
        )
        idempotency = self._idempotency
        await self._run(
            lambda: idempotency.complete(
                caller=stored.caller.domain, key=stored.idempotency_key, outcome=outcome
            )
        )

    # --- ownership and recovery ---------------------------------------------

    async def _maintain_forever(self) -> None:
        own = True  # the first round takes back this instance's tasks from before a restart
        while True:
            try:
                await self._renew()
                await self.adopt(own=own)
                own = False
            except GatewayError as exc:
                log.warning("task leases: %s", exc.message)
            await asyncio.sleep(self.config.lease_ttl / 3)

    async def _renew(self) -> None:
        ids = list(self._followers)
        if not ids:
            return
        now, ttl = self._clock(), timedelta(seconds=self.config.lease_ttl)
        await self._run(
            lambda: self._store.renew(owner=self.config.instance, task_ids=ids, now=now, ttl=ttl)
        )

    async def adopt(self, *, own: bool = False) -> list[str]:
        """Adopts orphaned tasks (and with `own` this instance's) and re-attaches to them."""
        now, ttl = self._clock(), timedelta(seconds=self.config.lease_ttl)
        adopted = await self._run(
            lambda: self._store.adopt(
                owner=self.config.instance, now=now, ttl=ttl, own=own, limit=1000
            )
        )
        started: list[str] = []
        for stored in adopted:
            if stored.task_id in self._followers:
                continue  # followed here already; the lease was only late
            follower = asyncio.create_task(
                self._reattach(stored), name=f"task-reattach {stored.task_id}"
            )
            self._followers[stored.task_id] = follower
            started.append(stored.task_id)
        if started:
            log.info("adopted %d unfinished tasks: %s", len(started), ", ".join(started))
        return started

    async def _reattach(self, stored: StoredTask) -> None:
        task_id = stored.task_id
        try:
            await self._follow(stored)
        except _Fenced:
            log.info("task %s: followed by another gateway instance now", task_id)
        except GatewayError as exc:
            await self._fail(task_id, exc, None, stored.endpoint)
        finally:
            self._followers.pop(task_id, None)

    async def _follow(self, stored: StoredTask) -> None:
        """Re-attaches to a task on its domain, or fails it with the reason it cannot."""
        domain, task_id = stored.target.domain, stored.task_id
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.config.reattach_grace
        position, attached = stored.domain_sequence, False
        while True:
            live = self._registry.live_addresses(domain)
            candidates = [stored.endpoint] if stored.endpoint in live else []
            candidates += [a for a in live if a != stored.endpoint and not stored.endpoint]
            reasons: list[str] = []
            unknown = 0
            for address in candidates:
                try:
                    async with aclosing(self._link.attach(address, domain, task_id, position)) as s:
                        async for update in s:
                            if not attached:
                                attached = True
                                await self._append(
                                    task_id,
                                    TaskUpdate(
                                        TaskState.INPUT_REQUIRED
                                        if stored.state is TaskState.INPUT_REQUIRED
                                        else TaskState.WORKING,
                                        f"re-attached to {address} by gateway "
                                        f"{self.config.instance}",
                                    ),
                                    None,
                                    address,
                                )
                            if update.final:
                                await self._record_outcome(stored, update, address)
                            await self._append(task_id, update, None, address)
                            position = update.sequence or position
                            if update.final:
                                return
                    raise DomainUnavailable(
                        f"{address} ended the task's stream without a final event"
                    )
                except TaskNotFound:
                    unknown += 1
                    reasons.append(f"{address} does not know it")
                except DomainUnavailable as exc:
                    reasons.append(exc.message)
            if not candidates:
                reasons.append(
                    f"its endpoint {stored.endpoint} is no longer live"
                    if stored.endpoint
                    else f"domain {domain!r} has no live endpoint"
                )
            elif unknown == len(candidates):
                raise DomainUnavailable(
                    f"task {task_id} cannot be recovered: domain {domain!r} no longer knows it "
                    f"({'; '.join(reasons)}); it was not run again"
                )
            if loop.time() >= give_up:
                raise DomainUnavailable(
                    f"task {task_id} cannot be recovered: could not re-attach to domain "
                    f"{domain!r} within {self.config.reattach_grace:g}s "
                    f"({'; '.join(reasons)}); it was not run again"
                )
            await asyncio.sleep(REATTACH_RETRY)

    async def _record_outcome(self, stored: StoredTask, final: TaskUpdate, address: str) -> None:
        # Audit before answering holds for re-attached tasks too: the outcome is
        # recorded before the final event is stored (and seen by watchers).
        attributes: dict[str, object] = {
            "reattached": True,
            "endpoints": [address],
            "depth": stored.depth,
            "parent_task_id": stored.parent_task_id,
        }
        if final.error is not None:
            attributes["error"] = final.error.message
        await self._audit.record(
            [
                AuditEvent(
                    type=EventType.TASK_FINISHED,
                    actor=str(stored.caller),
                    source_domain=stored.caller.domain,
                    target_domain=stored.target.domain,
                    capability=stored.target.name,
                    trace_id=stored.trace_id,
                    task_id=stored.task_id,
                    parent_task_id=stored.parent_task_id,
                    outcome=str(final.state),
                    attributes=attributes,
                )
            ]
        )

    # --- policy and audit -----------------------------------------------------

    def _may_oversee(self, principal: Principal, domain: str, capability: str) -> bool:
        if capability == "*":
            return self._policy.decide(principal, domain, "*", Action.AUDIT_READ).allowed
        return self._policy.decide(principal, domain, capability, Action.RESPOND).allowed

    def _visible(self, principal: Principal, stored: StoredTask) -> bool:
        """The caller domain, whoever may answer it, and auditors of its domain see a task."""
        return (
            stored.caller.domain == principal.domain
            or self._may_oversee(principal, stored.target.domain, stored.target.name)
            or self._may_oversee(principal, stored.target.domain, "*")
        )

    async def _record_decision(
        self, principal: Principal, stored: StoredTask, action: str, decision: Decision
    ) -> None:
        await self._audit.record(
            [
                AuditEvent(
                    type=EventType.POLICY_DECISION,
                    actor=str(principal),
                    source_domain=principal.domain,
                    target_domain=stored.target.domain,
                    capability=stored.target.name,
                    trace_id=stored.trace_id,
                    task_id=stored.task_id,
                    decision="allow" if decision.allowed else "deny",
                    rule=decision.rule,
                    policy_version=decision.policy_version,
                    outcome="allowed" if decision.allowed else "denied",
                    attributes={"action": f"task.{action}"},
                )
            ]
        )

    # --- helpers ----------------------------------------------------------------

    def _lease_end(self) -> datetime:
        return self._clock() + timedelta(seconds=self.config.lease_ttl)

    async def _run(self, fn: Callable[[], T]) -> T:
        # Store calls block (SQLAlchemy): keep them off the event loop.
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


def _canceled(reason: str) -> TaskUpdate:
    return TaskUpdate(TaskState.CANCELED, f"canceled: {reason}", final=True)


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, DomainUnavailable):
        return "domain_unavailable"
    if isinstance(exc, GatewayError):
        name = type(exc).__name__
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return "internal"
