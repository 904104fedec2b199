"""The shared context as a handler sees it: what the caller attached, and write-backs.

ctx.context.value("case/main")        an attached item's value (redacted: raises)
ctx.context.attached                  every attached item, whole or redacted
await ctx.context.put("risk/score", {...})        write back, owned by this domain,
                                                  classified as the capability declares
await ctx.context.get("case/main")    read any item of the trace through the gateway
await ctx.call("finance/pay", {...}, context=["case/main", "risk/score"])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domains.sdk.context_client import ContextClient
from domains.sdk.gateway_client import GatewayClient
from gateway.core.context.items import ContextItem, ContextView
from gateway.core.models import Classification
from gateway.core.task import TaskInfo


class ContextRedacted(LookupError):
    """The item was attached but withheld from this domain (policy or flow rules).

    Attributes:
        view: The redacted item: key, version, classification and owner, no value.
    """

    def __init__(self, view: ContextView) -> None:
        super().__init__(
            f"context item {view.item.key!r} ({view.item.classification.name.lower()}, "
            f"owned by {view.item.owner}) is redacted for this domain: {view.reason}"
        )
        self.view = view


class SharedContext:
    """One task's view of the federation's shared context (its trace)."""

    def __init__(self, task: TaskInfo, gateway: GatewayClient | None) -> None:
        self._task = task
        self._client = ContextClient(gateway) if gateway is not None else None
        self._attached = {v.item.key: v for v in task.context}

    @property
    def attached(self) -> Mapping[str, ContextView]:
        """The items the caller referenced, by key, as this domain may see them."""
        return self._attached

    def value(self, key: str) -> Any:
        """The value of an attached item.

        Raises:
            KeyError: The caller attached no item `key`.
            ContextRedacted: It was attached but withheld from this domain.
        """
        view = self._attached[key]
        if view.redacted:
            raise ContextRedacted(view)
        return view.value

    async def get(self, key: str, *, version: int = 0) -> ContextView:
        """Reads an item of this task's trace through the gateway (whole or redacted)."""
        return await self._require_client().get(self._task.trace_id, key, version=version)

    async def put(
        self,
        key: str,
        value: Any,
        *,
        classification: Classification | None = None,
        expected_version: int | None = None,
        ttl: float | None = None,
    ) -> ContextItem:
        """Writes context back into this task's trace, owned by this domain.

        The write carries the task's grant: it is classified as the capability
        declares (`returns=`) unless `classification` says otherwise, and refused
        (`PolicyDenied`, recorded) above the highest declared classification.

        Raises:
            gateway.errors.VersionConflict: `expected_version` is stale.
            gateway.errors.PolicyDenied: Refused (see above, or the policy).
        """
        return await self._require_client().put(
            self._task.trace_id,
            key,
            value,
            classification=classification,
            expected_version=expected_version,
            ttl=ttl,
            grant=self._task.context_grant,
        )

    def _require_client(self) -> ContextClient:
        if self._client is None:
            raise RuntimeError("this domain has no gateway configured; shared context needs one")
        return self._client
