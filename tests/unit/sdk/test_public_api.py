"""The SDK's public surface is deliberate: adding or removing a name is a reviewed change."""

from __future__ import annotations

import domains.sdk

EXPECTED = [
    "Agent",
    "Answer",
    "CallFailed",
    "Capability",
    "Classification",
    "ContextClient",
    "ContextRedacted",
    "ContextRef",
    "Declined",
    "Domain",
    "DomainInfo",
    "DomainServer",
    "EndpointInfo",
    "FunctionAgent",
    "GatewayClient",
    "InputRequired",
    "InvokeResult",
    "Lease",
    "LeaseKeeper",
    "OrchestratorService",
    "SharedContext",
    "TaskClient",
    "TaskContext",
    "TaskEvent",
    "TaskRecord",
    "TaskState",
    "agent",
    "conditional",
    "define_capability",
    "escalate",
    "fallback",
    "open_gateway_channel",
    "parallel",
    "retry",
    "run_domain",
    "sequence",
]


def test_all_is_pinned_and_sorted() -> None:
    assert domains.sdk.__all__ == EXPECTED
    assert sorted(EXPECTED) == EXPECTED


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in domains.sdk.__all__:
        obj = getattr(domains.sdk, name)
        assert obj.__doc__, f"{name} has no docstring"
