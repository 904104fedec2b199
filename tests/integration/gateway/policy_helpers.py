"""Helpers for the policy tests: a gateway on the real default policy, clients per principal."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from domains.sdk import Domain, GatewayClient, TaskContext
from federation.v1 import policy_pb2_grpc
from gateway.services import metadata
from gateway.settings import PolicySettings, Settings

from .conftest import gateway_settings

POLICIES = Path(__file__).resolve().parents[3] / "policies"


def default_policy_settings(tmp_path: Path, database_url: str = "", **overrides: Any) -> Settings:
    """A test gateway seeded with the real `policies/` files."""
    return gateway_settings(
        tmp_path,
        database_url,
        policy=overrides.pop("policy", PolicySettings(seed_dir=POLICIES)),
        **overrides,
    )


def client_as(address: str, domain: str, agent: str = "") -> GatewayClient:
    """A gateway client calling as `domain` (plaintext, identity asserted in metadata)."""
    # Plaintext where the client supports choosing it (mTLS is the default once
    # the identity work lands); identity then travels in metadata as before.
    extra = {"insecure": True} if "insecure" in inspect.signature(GatewayClient).parameters else {}
    return GatewayClient(address, domain=domain, agent=agent, **extra)


def identity(domain: str, agent: str = "") -> tuple[tuple[str, str], ...]:
    """Call metadata asserting a caller (insecure mode)."""
    pairs = [(metadata.CALLER_DOMAIN, domain)]
    if agent:
        pairs.append((metadata.CALLER_AGENT, agent))
    return tuple(pairs)


def admin_stub(channel: Any) -> policy_pb2_grpc.PolicyAdminStub:
    """The PolicyAdmin stub over a channel."""
    return policy_pb2_grpc.PolicyAdminStub(channel)


class Anything(BaseModel):
    """Any JSON object (extra fields allowed)."""

    model_config = {"extra": "allow"}


class Done(BaseModel):
    """What the counting domains answer."""

    served_by: str


def counting_domain(name: str, *capabilities: str) -> Domain:
    """A domain whose capabilities count their calls in `domain.calls`."""
    domain = Domain(name=name, owner="tests")
    domain.calls = 0  # type: ignore[attr-defined]

    async def handler(ctx: TaskContext, request: Anything) -> Done:
        domain.calls += 1  # type: ignore[attr-defined]
        return Done(served_by=name)

    for capability in capabilities:
        domain.capability(capability, idempotent=True, timeout=5.0)(handler)
    return domain
