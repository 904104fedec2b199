"""A domain: its identity and the catalog of capabilities its orchestrator serves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from domains.sdk.capability import Capability, Handler, define_capability
from gateway.core.models import CapabilitySpec, Classification
from gateway.core.names import check_name

H = TypeVar("H", bound=Handler)


class Domain:
    """A business domain's local orchestrator, as a catalog of capabilities.

    Example:
        ```python
        domain = Domain(name="risk", owner="risk-team")

        @domain.capability("score", version="1.0.0", idempotent=True, timeout=5.0)
        async def score(ctx: TaskContext, req: ScoreRequest) -> ScoreResult:
            ...
        ```

    Attributes:
        name: Domain name, `[a-z][a-z0-9-]{1,62}`.
        owner: Owning team (contact information, not an identity).
    """

    def __init__(self, name: str, owner: str) -> None:
        """Creates an empty domain.

        Args:
            name: Domain name, `[a-z][a-z0-9-]{1,62}`.
            owner: Owning team.

        Raises:
            gateway.errors.InvalidRequest: The name is not a valid domain name.
        """
        self.name = check_name("domain", name)
        self.owner = owner
        self._capabilities: dict[str, Capability] = {}

    def capability(
        self,
        name: str,
        *,
        version: str = "1.0.0",
        description: str = "",
        idempotent: bool = False,
        timeout: float = 30.0,
        accepts: Sequence[Classification] = (),
        returns: Sequence[Classification] = (),
        fallback: str | None = None,
    ) -> Callable[[H], H]:
        """Decorator that adds a typed async handler to the catalog.

        The handler is returned unchanged, so it stays directly callable in tests.
        Arguments are those of `domains.sdk.capability.define_capability`.

        Raises:
            ValueError: The domain already has a capability of that name.
        """

        def decorate(handler: H) -> H:
            self.add(
                define_capability(
                    handler,
                    name=name,
                    version=version,
                    description=description,
                    idempotent=idempotent,
                    timeout=timeout,
                    accepts=accepts,
                    returns=returns,
                    fallback=fallback,
                )
            )
            return handler

        return decorate

    def add(self, capability: Capability) -> None:
        """Adds a capability built with `define_capability`.

        Raises:
            ValueError: The domain already has a capability of that name.
        """
        if capability.name in self._capabilities:
            raise ValueError(f"domain {self.name} already has a capability {capability.name!r}")
        self._capabilities[capability.name] = capability

    def get(self, name: str, version: str = "") -> Capability | None:
        """The named capability, or None; a non-empty `version` must match exactly."""
        found = self._capabilities.get(name)
        if found is None or (version and found.version != version):
            return None
        return found

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        """Every capability, in the order they were declared."""
        return tuple(self._capabilities.values())

    def catalog(self) -> tuple[CapabilitySpec, ...]:
        """The catalog entries the domain registers with the gateway."""
        return tuple(c.spec for c in self._capabilities.values())

    def __repr__(self) -> str:
        return f"Domain(name={self.name!r}, capabilities={list(self._capabilities)})"
