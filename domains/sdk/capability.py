"""Capabilities declared as typed async handlers.

A handler is `async def handler(ctx: TaskContext, request: In) -> Out` where `In`
and `Out` are pydantic models. The models give the input and output JSON Schema of
the catalog entry and validate data at run time, so the schema the gateway checks
and the code that runs can never drift apart.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from gateway.core.models import CapabilitySpec, CapabilityTarget, Classification
from gateway.core.names import check_name, parse_capability_ref

if TYPE_CHECKING:
    from domains.sdk.context import TaskContext

Handler = Callable[["TaskContext", Any], Awaitable[Any]]
"""An async capability handler: `(ctx, request model) -> output model`."""


@dataclass(frozen=True, slots=True)
class Capability:
    """A capability ready to serve: its catalog entry, handler and models.

    Attributes:
        spec: The catalog entry the domain registers with the gateway.
        handler: The async function that does the work.
        input_model: Pydantic model the input is validated into.
        output_model: Pydantic model of the handler's result.
    """

    spec: CapabilitySpec
    handler: Handler
    input_model: type[BaseModel]
    output_model: type[BaseModel]

    @property
    def name(self) -> str:
        """The capability's name inside its domain."""
        return self.spec.name

    @property
    def version(self) -> str:
        """The capability's contract version."""
        return self.spec.version

    @property
    def timeout(self) -> float:
        """Default timeout in seconds, applied when a call carries no deadline."""
        return self.spec.default_timeout.total_seconds()


def define_capability(
    handler: Handler,
    *,
    name: str,
    version: str = "1.0.0",
    description: str = "",
    idempotent: bool = False,
    timeout: float = 30.0,
    accepts: Sequence[Classification] = (),
    returns: Sequence[Classification] = (),
    fallback: str | None = None,
) -> Capability:
    """Builds a `Capability` from a typed handler.

    Args:
        handler: `async def (ctx: TaskContext, request: InModel) -> OutModel`; both
            models must be pydantic `BaseModel` subclasses named in the annotations.
        name: Capability name, `[a-z][a-z0-9-]{1,62}`.
        version: Contract version, for example `1.0.0`.
        description: One-line human description (defaults to the handler's docstring).
        idempotent: True if running twice with the same input equals running once;
            only idempotent capabilities are retried by the gateway.
        timeout: Default timeout in seconds, used when a caller sets no deadline.
        accepts: Data classifications the capability accepts as input context.
        returns: Data classifications the capability may return.
        fallback: `domain/capability[@version]` the gateway calls instead when this
            capability has no reachable endpoint or its circuit is open.

    Returns:
        The capability, with JSON Schemas derived from the models.

    Raises:
        gateway.errors.InvalidRequest: The name is not a valid capability name.
        TypeError: The handler is not async or its annotations are not pydantic models.
        ValueError: The version is empty or the timeout is not positive.
    """
    check_name("capability", name)
    if not version:
        raise ValueError(f"capability {name}: version is required")
    if timeout <= 0:
        raise ValueError(f"capability {name}: timeout must be positive, got {timeout}")
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"capability {name}: handler {handler!r} must be an async function")
    input_model, output_model = _models_of(handler, name)
    spec = CapabilitySpec(
        name=name,
        version=version,
        description=description or _first_line(handler.__doc__),
        input_schema=input_model.model_json_schema(mode="validation"),
        output_schema=output_model.model_json_schema(mode="serialization"),
        idempotent=idempotent,
        default_timeout=timedelta(seconds=timeout),
        accepts=tuple(Classification(c) for c in accepts),
        returns=tuple(Classification(c) for c in returns),
        fallback=CapabilityTarget(*parse_capability_ref(fallback)) if fallback else None,
    )
    return Capability(
        spec=spec, handler=handler, input_model=input_model, output_model=output_model
    )


def _models_of(handler: Handler, name: str) -> tuple[type[BaseModel], type[BaseModel]]:
    params = list(inspect.signature(handler).parameters.values())
    if len(params) != 2:
        raise TypeError(
            f"capability {name}: handler must take exactly (ctx, request), got {len(params)} "
            "parameters"
        )
    try:
        hints = typing.get_type_hints(handler)
    except NameError as exc:
        # Names imported only under TYPE_CHECKING cannot be resolved at run time.
        raise TypeError(
            f"capability {name}: cannot resolve the handler's annotations ({exc}); import "
            "the models (and TaskContext) at module level"
        ) from None
    request = hints.get(params[1].name)
    result = hints.get("return")
    for role, model in (("request parameter", request), ("return", result)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(
                f"capability {name}: the handler's {role} must be annotated with a pydantic "
                f"BaseModel subclass, got {model!r}"
            )
    return typing.cast(type[BaseModel], request), typing.cast(type[BaseModel], result)


def _first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc).splitlines()[0] if doc and doc.strip() else ""
