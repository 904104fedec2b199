"""The context space's use cases on a real store with the real default policy."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from contextlib import aclosing

import pytest
from sqlalchemy.engine import Engine

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.content_hash import ContentHasher
from gateway.core.context.access import ContextAccess
from gateway.core.context.changes import ChangeSignals
from gateway.core.context.grant import GrantSigner
from gateway.core.context.items import ContextItem, ContextView, ContextWrite
from gateway.core.context.space import ContextSpace
from gateway.core.models import (
    CapabilitySpec,
    CapabilityTarget,
    Classification,
    ContextRef,
    Principal,
)
from gateway.core.policy import CasbinPolicy
from gateway.core.task import TaskInfo
from gateway.errors import (
    AuditUnavailable,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PolicyDenied,
    StoreUnavailable,
    VersionConflict,
)
from gateway.store.context_store import SqlContextStore

from .conftest import Clock, KeepingSink

SUPPORT = Principal("support", "agent/intake")
FINANCE = Principal("finance")
RISK = Principal("risk")
TRACE = "trace-1"
C = Classification


def write(key: str, value: object, classification: C | None = None, **kw: object) -> ContextWrite:
    return ContextWrite(
        trace_id=TRACE,
        key=key,
        value=value,
        classification=classification,
        **kw,  # type: ignore[arg-type]
    )


async def test_put_get_and_the_records_they_leave(space: ContextSpace, sink: KeepingSink) -> None:
    item = await space.put(
        SUPPORT, write("case", {"amount": 42.5}, C.CONFIDENTIAL, expected_version=0)
    )
    assert (item.version, item.owner, item.created_by) == (1, "support", "support/agent/intake")
    view = await space.get(FINANCE, TRACE, "case")
    assert not view.redacted
    assert view.value == {"amount": 42.5}
    (written,) = sink.of(EventType.CONTEXT_WRITTEN)
    assert (written.decision, written.outcome, written.classifications) == (
        "allow",
        "written",
        ("confidential",),
    )
    assert written.attributes["version"] == 1
    # Audit before acting: the allowed decision is recorded before the store is written.
    (intent,) = sink.of(EventType.POLICY_DECISION)
    assert sink.events.index(intent) < sink.events.index(written)
    assert (intent.decision, intent.attributes["action"], intent.attributes["key"]) == (
        "allow",
        "context.write",
        "case",
    )
    (read,) = sink.of(EventType.CONTEXT_READ)
    # The same value hashes the same in both records: the trail shows what crossed.
    assert read.attributes["content_hash"] == written.attributes["content_hash"]
    assert (read.source_domain, read.target_domain) == ("support", "finance")


async def test_stale_writes_are_refused_and_recorded(
    space: ContextSpace, sink: KeepingSink
) -> None:
    await space.put(SUPPORT, write("case", 1, expected_version=0))
    await space.put(SUPPORT, write("case", 2, expected_version=1))
    with pytest.raises(VersionConflict, match="current version is 2"):
        await space.put(SUPPORT, write("case", 3, expected_version=1))
    stale = [e for e in sink.of(EventType.CONTEXT_WRITTEN) if e.outcome == "stale"]
    assert len(stale) == 1
    assert stale[0].attributes["current_version"] == 2


async def test_nothing_is_written_while_the_trail_is_unavailable(
    db_engine: Engine, default_policy: CasbinPolicy, clock: Clock
) -> None:
    class DownSink(KeepingSink):
        async def record(self, events: list[AuditEvent]) -> Sequence[object]:
            raise AuditUnavailable("audit trail unavailable: the test took it away")

    store = SqlContextStore(db_engine)
    down = ContextSpace(
        store,
        ContextAccess(default_policy, ContentHasher(b"c" * 32)),
        DownSink(),
        GrantSigner(b"g" * 32),
        clock=clock,
    )
    with pytest.raises(AuditUnavailable):
        await down.put(SUPPORT, write("case", 1, expected_version=0))
    assert store.history(trace_id=TRACE, key="case") == []


async def test_a_store_outage_is_no_refusal(
    db_engine: Engine, default_policy: CasbinPolicy, sink: KeepingSink, clock: Clock
) -> None:
    class DownStore(SqlContextStore):
        def put(self, **kwargs: object) -> ContextItem:  # type: ignore[override]
            raise StoreUnavailable("the database is unavailable: the test took it away")

    down = ContextSpace(
        DownStore(db_engine),
        ContextAccess(default_policy, ContentHasher(b"c" * 32)),
        sink,
        GrantSigner(b"g" * 32),
        clock=clock,
    )
    with pytest.raises(StoreUnavailable):
        await down.put(SUPPORT, write("case", 1))
    assert [e.type for e in sink.events] == [EventType.POLICY_DECISION]  # no refusal record


async def test_concurrent_writers_through_the_space_one_wins(space: ContextSpace) -> None:
    await space.put(SUPPORT, write("case", 0, expected_version=0))
    results = await asyncio.gather(
        *(space.put(SUPPORT, write("case", i, expected_version=1)) for i in range(6)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, VersionConflict) for r in results if isinstance(r, BaseException))


async def test_writes_need_the_policy_and_ownership(space: ContextSpace, sink: KeepingSink) -> None:
    with pytest.raises(PolicyDenied, match=r"context\.write"):
        await space.put(Principal("cli"), write("note", 1))
    await space.put(SUPPORT, write("case", 1))
    with pytest.raises(PolicyDenied, match="owned by 'support'"):
        await space.put(RISK, write("case", 2))
    with pytest.raises(PolicyDenied, match="owned by 'support'"):
        await space.delete(RISK, TRACE, "case")
    denied = [e for e in sink.of(EventType.CONTEXT_WRITTEN) if e.decision == "deny"]
    assert [e.actor for e in denied] == ["cli", "risk", "risk"]


async def test_finance_sees_the_case_but_not_the_restricted_notes(
    space: ContextSpace, sink: KeepingSink
) -> None:
    await space.put(SUPPORT, write("case/main", {"order": "o-1"}, C.CONFIDENTIAL))
    await space.put(SUPPORT, write("case/notes", {"fraud-suspicion": True}, C.RESTRICTED))
    views = await space.list_items(FINANCE, TRACE, prefix="case/")
    assert [(v.item.key, v.redacted) for v in views] == [("case/main", False), ("case/notes", True)]
    assert views[1].value is None
    assert views[1].item.classification is C.RESTRICTED
    (redacted,) = sink.of(EventType.CONTEXT_REDACTED)
    assert redacted.attributes["key"] == "case/notes"
    assert redacted.rule == "default-deny"


async def test_bad_input_is_invalid(space: ContextSpace) -> None:
    with pytest.raises(InvalidRequest, match="context key"):
        await space.put(SUPPORT, write("bad key", 1))
    with pytest.raises(InvalidRequest, match="trace id"):
        await space.get(SUPPORT, "", "case")
    with pytest.raises(InvalidRequest, match="ttl"):
        await space.put(SUPPORT, write("case", 1, ttl_seconds=10_000.0))
    with pytest.raises(InvalidRequest, match="not JSON"):
        await space.put(SUPPORT, write("case", float("nan")))
    with pytest.raises(PayloadTooLarge):
        await space.put(SUPPORT, write("case", "x" * 300_000))
    with pytest.raises(NotFound):
        await space.get(SUPPORT, TRACE, "missing")


async def test_items_expire_after_their_ttl(space: ContextSpace, clock: Clock) -> None:
    await space.put(SUPPORT, write("short", 1, ttl_seconds=5.0))
    await space.put(SUPPORT, write("long", 1, ttl_seconds=600.0))
    clock.advance(6)
    with pytest.raises(NotFound):
        await space.get(SUPPORT, TRACE, "short")
    assert [v.item.key for v in await space.list_items(SUPPORT, TRACE)] == ["long"]
    assert await space.purge_expired() == 1
    clock.advance(600)
    assert await space.purge_expired() == 1


def task(
    domain: str = "risk", returns: tuple[C, ...] = (C.INTERNAL,)
) -> tuple[TaskInfo, CapabilitySpec]:
    info = TaskInfo(
        task_id="task-1",
        trace_id=TRACE,
        caller=Principal("support"),
        target=CapabilityTarget(domain, "score", "1.0.0"),
    )
    return info, CapabilitySpec(
        name="score", version="1.0.0", returns=returns, accepts=(C.CONFIDENTIAL,)
    )


async def test_write_back_is_classified_as_declared_and_refused_above(
    space: ContextSpace, sink: KeepingSink
) -> None:
    info, capability = task()
    grant = space.grant_for(info, capability)
    item = await space.put(RISK, write("risk/score", {"score": 10}, grant=grant))
    assert item.classification is C.INTERNAL  # the capability's declaration
    assert sink.events[-1].task_id == "task-1"
    with pytest.raises(PolicyDenied, match="declares context up to internal"):
        await space.put(RISK, write("risk/leak", {"x": 1}, C.CONFIDENTIAL, grant=grant))
    refused = sink.events[-1]
    assert (refused.outcome, refused.rule, refused.classifications) == (
        "refused",
        "capability-declaration",
        ("confidential",),
    )
    with pytest.raises(NotFound):
        await space.get(RISK, TRACE, "risk/leak")
    # A grant is bound to its domain and trace, and cannot be forged.
    with pytest.raises(PolicyDenied, match="not finance"):
        await space.put(FINANCE, write("x", 1, grant=grant))
    with pytest.raises(PolicyDenied, match="not valid"):
        await space.put(RISK, write("x", 1, grant=grant[:-2] + "00"))


async def test_attach_gives_the_target_what_may_flow(space: ContextSpace) -> None:
    await space.put(SUPPORT, write("case/main", {"order": "o-1"}, C.CONFIDENTIAL))
    await space.put(SUPPORT, write("case/notes", {"n": 1}, C.RESTRICTED))
    info, capability = task("finance")
    views, events = await space.attach(
        info, capability, [ContextRef("case/main"), ContextRef("case/notes", 1)]
    )
    assert [v.redacted for v in views] == [False, True]
    assert [e.type for e in events] == [EventType.CONTEXT_READ, EventType.CONTEXT_REDACTED]
    assert all(e.task_id == "task-1" and e.actor == "support" for e in events)
    with pytest.raises(NotFound, match="names no item"):
        await space.attach(info, capability, [ContextRef("case/main", 9)])


class SeenSignals(ChangeSignals):
    """Change signals that tell the test when a watcher asked for its trace's signal."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def signal(self, trace_id: str) -> asyncio.Event:
        self.asked[trace_id].set()
        return super().signal(trace_id)


async def test_a_watched_trace_is_forgotten_when_its_last_watcher_leaves(
    db_engine: Engine, default_policy: CasbinPolicy, sink: KeepingSink, clock: Clock
) -> None:
    signals = SeenSignals()
    space = ContextSpace(
        SqlContextStore(db_engine),
        ContextAccess(default_policy, ContentHasher(b"c" * 32)),
        sink,
        GrantSigner(b"g" * 32),
        signals=signals,
        clock=clock,
    )

    async def first_change(trace: str) -> ContextView:
        async with aclosing(space.watch(FINANCE, trace)) as changes:
            async for view in changes:
                return view
        raise AssertionError("the watch ended without a change")

    quiet = [asyncio.create_task(first_change(f"never-written-{i}")) for i in range(3)]
    twice = [asyncio.create_task(first_change(TRACE)) for _ in range(2)]
    for trace in [*(f"never-written-{i}" for i in range(3)), TRACE]:
        await asyncio.wait_for(signals.asked[trace].wait(), 5)
    for task in quiet:
        task.cancel()
    await asyncio.gather(*quiet, return_exceptions=True)
    assert len(signals) == 1  # only TRACE, still watched
    await space.put(SUPPORT, write("case", 1))
    views = await asyncio.wait_for(asyncio.gather(*twice), 5)
    assert [v.item.key for v in views] == ["case", "case"]
    assert len(signals) == 0


async def test_watch_resumes_after_a_disconnect_without_missing_versions(
    space: ContextSpace,
) -> None:
    seen: list[ContextView] = []

    async def watch(after: int, count: int) -> None:
        async with aclosing(space.watch(FINANCE, TRACE, after)) as changes:
            async for view in changes:
                seen.append(view)
                if len(seen) >= count:
                    return

    await space.put(SUPPORT, write("case", 1))
    first = asyncio.create_task(watch(0, 2))
    await space.put(SUPPORT, write("case", 2))
    await asyncio.wait_for(first, 5)  # disconnects after two versions
    # Written while nobody watched.
    await space.put(SUPPORT, write("case", 3))
    await space.put(SUPPORT, write("notes", "n", C.RESTRICTED))
    resumed = asyncio.create_task(watch(seen[-1].item.revision, 5))
    await space.delete(SUPPORT, TRACE, "case")
    await asyncio.wait_for(resumed, 5)
    assert [(v.item.key, v.item.version) for v in seen] == [
        ("case", 1),
        ("case", 2),
        ("case", 3),
        ("notes", 1),
        ("case", 4),
    ]
    assert [v.redacted for v in seen] == [False, False, False, True, False]
    assert seen[-1].item.deleted
    revisions = [v.item.revision for v in seen]
    assert revisions == sorted(set(revisions))


async def test_a_delete_the_policy_refuses_is_recorded_with_the_policys_rule(
    space: ContextSpace, sink: KeepingSink
) -> None:
    await space.put(SUPPORT, write("case", 1))
    with pytest.raises(PolicyDenied, match=r"context\.write"):
        await space.delete(Principal("cli"), TRACE, "case")
    (denied,) = [e for e in sink.of(EventType.CONTEXT_WRITTEN) if e.decision == "deny"]
    # The policy refused it, not the ownership check the store makes afterwards.
    assert denied.rule != "owner-only"
    assert "context.write" in str(denied.attributes["reason"])
