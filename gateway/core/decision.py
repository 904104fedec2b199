"""Policy decisions and the open policy used until shared policies are configured."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.core.models import Principal


class Action(enum.StrEnum):
    """What a principal wants to do; the policy model's `act`."""

    INVOKE = "invoke"
    CONTEXT_READ = "context.read"
    CONTEXT_WRITE = "context.write"
    REGISTER = "register"
    AUDIT_READ = "audit.read"
    POLICY_ADMIN = "policy.admin"
    RESPOND = "respond"
    """Answer a task of a capability that waits for input (a human approval)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one policy check, with the rule that decided it."""

    allowed: bool
    reason: str
    rule: str = ""
    policy_version: int = 0


class OpenPolicy:
    """Allows every call. The seam the Casbin enforcer replaces; logs say when it is in use."""

    def decide(self, principal: Principal, domain: str, obj: str, action: Action) -> Decision:
        """Always allows, naming itself as the deciding rule."""
        return Decision(
            allowed=True, reason="open policy: no shared policy configured", rule="open"
        )
