"""The `PolicyAdmin` servicer: translates messages and maps errors, nothing more.

The use cases and their authorization live in `gateway.core.policy.admin`.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from federation.v1 import policy_pb2 as pol
from federation.v1 import policy_pb2_grpc as pol_grpc
from gateway.core.decision import Action
from gateway.core.policy import Explanation, PolicyRule, make_rule, parse_rules, principal_of
from gateway.core.policy.admin import PolicyAdministration
from gateway.core.policy.ports import PolicyChange
from gateway.core.policy.rules import format_rules
from gateway.errors import InvalidRequest
from gateway.services import convert
from gateway.services.errors import abort_for
from gateway.services.identity import caller_of

Context = grpc.aio.ServicerContext[object, object]


class PolicyService(pol_grpc.PolicyAdminServicer):
    """Policy administration RPCs; every one is authorized by the policy itself."""

    def __init__(self, admin: PolicyAdministration) -> None:
        self._admin = admin

    async def ListPolicies(  # noqa: N802 - gRPC method names are PascalCase
        self, request: pol.ListPoliciesRequest, context: Context
    ) -> pol.ListPoliciesResponse:
        try:
            policy_set = await self._admin.list_rules(
                caller_of(context), domain=request.domain, ptype=request.ptype
            )
        except Exception as exc:
            await abort_for(context, exc)
        return pol.ListPoliciesResponse(
            version=policy_set.version, rules=rules_to_proto(policy_set.rules)
        )

    async def AddPolicy(  # noqa: N802
        self, request: pol.ChangePolicyRequest, context: Context
    ) -> pol.PolicyChange:
        try:
            change = await self._admin.add(caller_of(context), rules_from_proto(request.rules))
        except Exception as exc:
            await abort_for(context, exc)
        return change_to_proto(change)

    async def RemovePolicy(  # noqa: N802
        self, request: pol.ChangePolicyRequest, context: Context
    ) -> pol.PolicyChange:
        try:
            change = await self._admin.remove(caller_of(context), rules_from_proto(request.rules))
        except Exception as exc:
            await abort_for(context, exc)
        return change_to_proto(change)

    async def ImportPolicies(  # noqa: N802
        self, request: pol.ImportPoliciesRequest, context: Context
    ) -> pol.PolicyChange:
        try:
            caller = caller_of(context)
            rules = parse_rules(request.text, source="import")
            if not rules and not request.replace:
                raise InvalidRequest("the imported text holds no rules")
            change = await self._admin.import_rules(caller, rules, replace=request.replace)
        except Exception as exc:
            await abort_for(context, exc)
        return change_to_proto(change)

    async def ExportPolicies(  # noqa: N802
        self, request: pol.ExportPoliciesRequest, context: Context
    ) -> pol.ExportPoliciesResponse:
        try:
            policy_set = await self._admin.export(caller_of(context))
        except Exception as exc:
            await abort_for(context, exc)
        return pol.ExportPoliciesResponse(
            version=policy_set.version, text=format_rules(policy_set.rules)
        )

    async def Check(  # noqa: N802
        self, request: pol.CheckRequest, context: Context
    ) -> pol.CheckResponse:
        try:
            explanation = await self._check(request, context, explain=False)
        except Exception as exc:
            await abort_for(context, exc)
        decision = explanation.decision
        return pol.CheckResponse(
            allowed=decision.allowed,
            reason=decision.reason,
            rule=decision.rule,
            version=decision.policy_version,
        )

    async def Explain(  # noqa: N802
        self, request: pol.CheckRequest, context: Context
    ) -> pol.CheckResponse:
        try:
            explanation = await self._check(request, context, explain=True)
        except Exception as exc:
            await abort_for(context, exc)
        return explanation_to_proto(explanation)

    async def ListChanges(  # noqa: N802
        self, request: pol.ListChangesRequest, context: Context
    ) -> pol.ListChangesResponse:
        try:
            changes = await self._admin.changes(
                caller_of(context), since=request.since_version, limit=request.limit or 100
            )
        except Exception as exc:
            await abort_for(context, exc)
        return pol.ListChangesResponse(changes=[change_to_proto(c) for c in changes])

    async def _check(
        self, request: pol.CheckRequest, context: Context, *, explain: bool
    ) -> Explanation:
        caller = caller_of(context)
        if not (request.subject and request.domain and request.object and request.action):
            raise InvalidRequest("subject, domain, object and action are required")
        make_rule("p", [request.subject, request.domain, request.object, request.action])
        return await self._admin.check(
            caller,
            principal_of(request.subject),
            request.domain,
            request.object,
            Action(request.action),
            explain=explain,
        )


def rules_from_proto(rules: Iterable[pol.PolicyRule]) -> list[PolicyRule]:
    """Validated core rules from wire rules."""
    return [make_rule(r.ptype, r.values) for r in rules]


def rules_to_proto(rules: Iterable[PolicyRule]) -> list[pol.PolicyRule]:
    """Wire rules from core rules."""
    return [pol.PolicyRule(ptype=r.ptype, values=r.values) for r in rules]


def change_to_proto(change: PolicyChange) -> pol.PolicyChange:
    """A recorded change on the wire."""
    message = pol.PolicyChange(
        version=change.version,
        changed=change.changed,
        actor=change.actor,
        kind=change.kind,
        added=rules_to_proto(change.added),
        removed=rules_to_proto(change.removed),
    )
    if change.changed_at is not None:
        message.changed_at.CopyFrom(convert.timestamp_to_proto(change.changed_at))
    return message


def explanation_to_proto(explanation: Explanation) -> pol.CheckResponse:
    """A decision with its explanation on the wire."""
    decision = explanation.decision
    return pol.CheckResponse(
        allowed=decision.allowed,
        reason=decision.reason,
        rule=decision.rule,
        version=decision.policy_version,
        matching_rules=rules_to_proto(explanation.matching_rules),
        subjects=explanation.subjects,
        roles=explanation.roles,
    )
