"""Who is calling: the domain its client certificate proves, and the agent it names.

mTLS (the default): the TLS handshake has verified the client certificate against
the federation CA, and gRPC reports its SPIFFE ID (`peer_spiffe_id`). The caller's
domain is `<name>` of `spiffe://<trust-domain>/domain/<name>`; the trust domain
must be the gateway's. Insecure mode (`--insecure`: local experiments and
in-process tests only): the domain is self-asserted in `fedgate-caller-domain`.

Claims beyond the proven domain are checked, never trusted. A caller may name the
agent acting inside its own domain (`agent/reconciler`, or `finance/agent/reconciler`
for finance), in the `fedgate-agent` metadata or the request. A certificate of A
claiming to be B (`fedgate-caller-domain: B`), or naming an agent of B
(`B/agent/x`), is refused with UNAUTHENTICATED and recorded as `identity.refused`.

`IdentityInterceptor` opens an identity scope around every call and records the
refusals of that call through the audit sink before the caller hears the answer (the
context's `abort`, which sends the status, records first);
`caller_of` is the one entry point servicers use to learn who is calling.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.models import Principal
from gateway.core.names import AGENT_PATTERN, check_agent, check_name
from gateway.core.ports import AuditSink
from gateway.errors import GatewayError, InvalidRequest, Unauthenticated
from gateway.identity.spiffe import SpiffeId
from gateway.services import metadata

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

PEER_SPIFFE_ID = "peer_spiffe_id"
"""Auth-context property where gRPC puts the verified certificate's single SPIFFE ID."""


@dataclass(slots=True)
class _Scope:
    """Identity state of one call: who was proven, what was refused and not yet recorded."""

    trust_domain: str | None
    """The gateway's trust domain; None in insecure mode."""
    method: str
    principal: Principal | None = None
    proof: str = ""
    """The verified SPIFFE ID (empty in insecure mode)."""
    refusal: Unauthenticated | None = None
    pending: list[AuditEvent] = field(default_factory=list)
    metadata: dict[str, str | bytes] | None = None
    """The call's invocation metadata as a dict, once read."""

    def metadata_of(self, context: Context) -> dict[str, str | bytes]:
        if self.metadata is None:
            self.metadata = dict(context.invocation_metadata() or ())
        return self.metadata

    def resolve(self, context: Context) -> Principal:
        if self.refusal is not None:
            raise self.refusal
        if self.principal is None:
            self.principal = self._resolve(context)
        return self.principal

    def _resolve(self, context: Context) -> Principal:
        values = self.metadata_of(context)
        claimed = _text(values.get(metadata.CALLER_DOMAIN))
        if self.trust_domain is None:
            domain, proof = self._asserted_domain(context, claimed), ""
        else:
            identity = self._proven_identity(context)
            domain, proof = identity.domain or "", str(identity)
            self.proof = proof
            if claimed and claimed != domain:
                self._refuse(
                    context,
                    f"certificate proves domain {domain!r}, the call claims to be {claimed!r}",
                    domain=domain,
                    claimed=claimed,
                    proof=proof,
                )
        agent = _text(values.get(metadata.CALLER_AGENT))
        return Principal(domain, self.agent_within(context, domain, agent))

    def _asserted_domain(self, context: Context, claimed: str) -> str:
        if not claimed:
            self._refuse(
                context,
                f"no caller identity: set the {metadata.CALLER_DOMAIN} metadata to "
                "your domain (insecure mode)",
            )
        try:
            return check_name("domain", claimed)
        except InvalidRequest as exc:
            self._refuse(context, exc.message, claimed=claimed)

    def _proven_identity(self, context: Context) -> SpiffeId:
        ids = list(context.auth_context().get(PEER_SPIFFE_ID) or ())
        if len(ids) != 1:
            self._refuse(context, "no client certificate naming one SPIFFE ID")
        raw = ids[0].decode(errors="replace")
        try:
            identity = SpiffeId.parse(raw)
        except ValueError as exc:
            self._refuse(context, str(exc), proof=raw)
        if identity.trust_domain != self.trust_domain:
            self._refuse(
                context,
                f"certificate {identity} is of trust domain {identity.trust_domain!r}, "
                f"the gateway trusts {self.trust_domain!r}",
                proof=raw,
            )
        if identity.domain is None:
            self._refuse(
                context,
                f"certificate {identity} does not name a domain (spiffe://<td>/domain/<name>)",
                proof=raw,
            )
        return identity

    def agent_within(self, context: Context, domain: str, agent: str) -> str:
        """`agent` as `agent/<name>` if it acts inside `domain`; refuses other domains' agents."""
        if not agent or AGENT_PATTERN.fullmatch(agent):
            return check_agent(agent)
        owner, sep, rest = agent.partition("/")
        if not sep or not AGENT_PATTERN.fullmatch(rest):
            return check_agent(agent)  # raises InvalidRequest: malformed, not a claim
        if owner != domain:
            self._refuse(
                context,
                f"domain {domain!r} may not act as agent {agent!r} of another domain",
                domain=domain,
                claimed=agent,
                proof=self.proof,
            )
        return rest

    def _refuse(
        self,
        context: Context,
        reason: str,
        *,
        domain: str = "",
        claimed: str = "",
        proof: str = "",
    ) -> NoReturn:
        self.pending.append(
            AuditEvent(
                type=EventType.IDENTITY_REFUSED,
                actor=proof or domain or "unknown",
                source_domain=domain,
                target_domain=claimed.partition("/")[0],
                outcome="refused",
                attributes={
                    "method": self.method,
                    "peer": context.peer(),
                    "claimed": claimed,
                    "reason": reason,
                },
            )
        )
        self.refusal = Unauthenticated(reason)
        raise self.refusal


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "fedgate_identity_scope", default=None
)


def caller_of(context: Context, agent: str = "") -> Principal:
    """The calling principal, proven by its certificate (or asserted in insecure mode).

    Args:
        context: The servicer context of the current call.
        agent: Agent named in the request; overrides the `fedgate-agent` metadata.
            `agent/<name>` or `<own domain>/agent/<name>`.

    Raises:
        Unauthenticated: No usable identity, or a claim the certificate does not back
            (recorded as `identity.refused` when the call ends).
        InvalidRequest: A malformed agent name.
    """
    scope = _SCOPE.get()
    if scope is None:
        # Fail closed: a server built without the interceptor proves nobody.
        raise Unauthenticated("no verified caller identity (identity interceptor not installed)")
    principal = scope.resolve(context)
    if not agent:
        return principal
    return Principal(principal.domain, scope.agent_within(context, principal.domain, agent))


def call_path_of(context: Context) -> tuple[str, ...]:
    """The call path the caller's SDK echoed (used when the parent task is not local)."""
    scope = _SCOPE.get()
    values = (
        scope.metadata_of(context)
        if scope is not None
        else dict(context.invocation_metadata() or ())
    )
    value = values.get(metadata.CALL_PATH, "")
    return metadata.decode_call_path(value) if isinstance(value, str) else ()


class IdentityInterceptor(grpc.aio.ServerInterceptor):
    """Opens an identity scope around each call and records its refusals before it ends."""

    def __init__(self, audit: AuditSink, *, trust_domain: str | None) -> None:
        """Creates the interceptor.

        Args:
            audit: Where refused identities are recorded.
            trust_domain: The trust domain callers' certificates must belong to;
                None for insecure mode (identity from metadata).
        """
        self._audit = audit
        self._trust_domain = trust_domain
        # method -> (the handler gRPC gave, our wrapper of it). gRPC asks for the handler
        # on every call; wrapping it once per method saves building a handler per call.
        self._wrapped: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap_unary(self, behavior: Any, method: str) -> Any:
        async def unary(request: Any, context: Context) -> Any:
            scope = _Scope(self._trust_domain, method)
            token = _SCOPE.set(scope)
            try:
                return await behavior(request, _RecordingContext(context, scope, self._flush))
            finally:
                _SCOPE.reset(token)
                await self._flush(scope)

        return unary

    def _wrap_stream(self, behavior: Any, method: str) -> Any:
        if not inspect.isasyncgenfunction(behavior):
            # A handler that writes with `context.write` returns a coroutine.
            return self._wrap_unary(behavior, method)

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            scope = _Scope(self._trust_domain, method)
            token = _SCOPE.set(scope)
            try:
                async for response in behavior(
                    request, _RecordingContext(context, scope, self._flush)
                ):
                    yield response
            finally:
                # A generator may be finalised in another context; the call's task
                # (and its context) ends with it anyway.
                with contextlib.suppress(ValueError):
                    _SCOPE.reset(token)
                await self._flush(scope)

        return stream

    async def _flush(self, scope: _Scope) -> None:
        if not scope.pending:
            return
        events, scope.pending = scope.pending, []
        for event in events:
            log.warning("identity refused: %s (%s)", event.attributes["reason"], event.actor)
        try:
            await self._audit.record(events)
        except GatewayError as exc:
            # The call is refused either way; the refusal just could not be recorded.
            log.error("could not record %d identity refusal(s): %s", len(events), exc.message)


class _RecordingContext:
    """The call's servicer context; `abort` records pending refusals first.

    gRPC sends the status from inside `abort`, so recording after the handler returns
    could come after the caller already has its answer.
    """

    def __init__(
        self,
        context: Context,
        scope: _Scope,
        flush: Callable[[_Scope], Awaitable[None]],
    ) -> None:
        self._context = context
        self._scope = scope
        self._flush = flush

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def abort(self, *args: Any, **kwargs: Any) -> NoReturn:
        await self._flush(self._scope)
        await self._context.abort(*args, **kwargs)
        raise AssertionError("unreachable: abort raises")

    async def abort_with_status(self, *args: Any, **kwargs: Any) -> NoReturn:
        await self._flush(self._scope)
        await self._context.abort_with_status(*args, **kwargs)
        raise AssertionError("unreachable: abort raises")


def _text(value: str | bytes | None) -> str:
    return value if isinstance(value, str) else ""
