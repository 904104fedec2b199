from __future__ import annotations

import pytest

from gateway.core.call_chain import position
from gateway.core.models import CapabilityTarget, Principal
from gateway.core.task import TaskInfo
from gateway.errors import CallChainRefused, InvalidRequest


def _task(path: tuple[str, ...], domain: str, trace: str = "t" * 32) -> TaskInfo:
    return TaskInfo(
        task_id="parent",
        trace_id=trace,
        caller=Principal("support"),
        target=CapabilityTarget(domain, path[-1].split("/")[1]),
        depth=len(path),
        call_path=path,
    )


def test_root_call_starts_a_trace_at_depth_one() -> None:
    place = position(
        caller=Principal("support"),
        target=CapabilityTarget("risk", "score"),
        trace_id="",
        parent=None,
        parent_task_id="",
        claimed_path=(),
        max_depth=8,
    )
    assert place.depth == 1
    assert place.call_path == ("risk/score",)
    assert len(place.trace_id) == 32


def test_nested_call_inherits_the_parents_trace_and_extends_its_path() -> None:
    parent = _task(("finance/refund",), "finance", trace="a" * 32)
    place = position(
        caller=Principal("finance"),
        target=CapabilityTarget("risk", "score"),
        trace_id="b" * 32,
        parent=parent,
        parent_task_id="parent",
        claimed_path=(),
        max_depth=8,
    )
    assert place.trace_id == "a" * 32
    assert place.call_path == ("finance/refund", "risk/score")
    assert place.depth == 2


def test_reentering_a_capability_is_a_cycle() -> None:
    parent = _task(("support/open-case", "risk/score"), "risk")
    with pytest.raises(CallChainRefused, match="cycle"):
        position(
            caller=Principal("risk"),
            target=CapabilityTarget("support", "open-case"),
            trace_id="",
            parent=parent,
            parent_task_id="parent",
            claimed_path=(),
            max_depth=8,
        )


def test_calling_back_into_another_capability_of_a_domain_on_the_path_is_allowed() -> None:
    parent = _task(("support/open-case", "risk/score"), "risk")
    place = position(
        caller=Principal("risk"),
        target=CapabilityTarget("support", "customer-history"),
        trace_id="",
        parent=parent,
        parent_task_id="parent",
        claimed_path=(),
        max_depth=8,
    )
    assert place.depth == 3


def test_depth_limit_refuses_the_call_one_past_it() -> None:
    path = tuple(f"d{i}/c" for i in range(3))
    parent = _task(path, "d2")
    with pytest.raises(CallChainRefused, match="depth 4 exceeds the limit of 3"):
        position(
            caller=Principal("d2"),
            target=CapabilityTarget("dx", "c"),
            trace_id="",
            parent=parent,
            parent_task_id="parent",
            claimed_path=(),
            max_depth=3,
        )


def test_unknown_parent_falls_back_to_the_claimed_path() -> None:
    with pytest.raises(CallChainRefused):
        position(
            caller=Principal("risk"),
            target=CapabilityTarget("support", "open-case"),
            trace_id="",
            parent=None,
            parent_task_id="elsewhere",
            claimed_path=("support/open-case", "risk/score"),
            max_depth=8,
        )


def test_parent_task_of_another_domain_is_refused() -> None:
    parent = _task(("finance/refund",), "finance")
    with pytest.raises(InvalidRequest, match="not in the caller's domain"):
        position(
            caller=Principal("support"),
            target=CapabilityTarget("risk", "score"),
            trace_id="",
            parent=parent,
            parent_task_id="parent",
            claimed_path=(),
            max_depth=8,
        )
