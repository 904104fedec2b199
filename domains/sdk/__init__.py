"""The domains SDK: build a domain's local orchestrator and join the federation.

    Domain, define_capability       declare capabilities as typed async handlers
    TaskContext                     what a handler gets: report, call, ask, require_input,
                                    context (SharedContext: attached items, write-backs)
    ContextClient                   read and write shared context outside a task
    Agent, agent, sequence, ...     coordinate agents inside the domain
    DomainServer, run_domain        serve the orchestrator, keep it registered
    GatewayClient                   call the gateway (nested calls, registry)
    TaskClient                      long-running tasks: submit, watch, respond, cancel

Test helpers live in `domains.sdk.testing`.
"""

from __future__ import annotations

from domains.sdk.agents import Agent, FunctionAgent, agent
from domains.sdk.capability import Capability, define_capability
from domains.sdk.channels import open_gateway_channel
from domains.sdk.context import TaskContext
from domains.sdk.context_client import ContextClient
from domains.sdk.domain import Domain
from domains.sdk.errors import CallFailed, Declined, InputRequired
from domains.sdk.events import TaskEvent
from domains.sdk.gateway_client import GatewayClient
from domains.sdk.lease import LeaseKeeper
from domains.sdk.orchestrator_service import OrchestratorService
from domains.sdk.results import DomainInfo, EndpointInfo, InvokeResult, Lease
from domains.sdk.server import DomainServer, run_domain
from domains.sdk.shared_context import ContextRedacted, SharedContext
from domains.sdk.task_client import TaskClient, TaskRecord
from domains.sdk.task_runs import Answer
from domains.sdk.workflow import (
    conditional,
    escalate,
    fallback,
    parallel,
    retry,
    sequence,
)
from gateway.core.models import Classification, ContextRef, TaskState

__all__ = [
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
