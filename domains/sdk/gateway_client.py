"""Async client of the federation gateway, for domains and standalone callers.

Every RPC goes through `translate_rpc_errors`, the one place that turns a gRPC status
into the gateway's exception tree (`gateway.services.status_map.error_for`), so
callers catch `PolicyDenied`, `DomainUnavailable`, ... and never see gRPC errors.
"""

# ruff: noqa: ASYNC109 - a `timeout` here becomes the gRPC deadline, which the server
# sees and propagates downstream; wrapping the call in asyncio.timeout would not.

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import grpc
from pydantic import BaseModel

from domains.sdk.channels import open_gateway_channel, resolve_credentials
from domains.sdk.events import TaskEvent, event_from_proto
from domains.sdk.results import (
    DomainInfo,
    InvokeResult,
    Lease,
    domain_info_from_proto,
    invoke_result_from_proto,
    lease_from_proto,
)
from federation.v1 import common_pb2 as pb
from federation.v1 import gateway_pb2 as gw
from federation.v1 import gateway_pb2_grpc as gw_grpc
from gateway.core.models import CapabilitySpec, CapabilityTarget, ContextRef
from gateway.core.names import check_agent, check_name, parse_capability_ref
from gateway.identity.credentials import Credentials
from gateway.services import convert, metadata, status_map

JSONInput = Mapping[str, Any] | BaseModel
"""A task input: a JSON object, or a pydantic model dumped in JSON mode."""


def json_object(value: JSONInput) -> dict[str, Any]:
    """A task input as a JSON object (pydantic models are dumped in JSON mode)."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else dict(value)


@contextlib.contextmanager
def translate_rpc_errors() -> Iterator[None]:
    """Raises the gateway exception tree in place of `grpc.aio.AioRpcError`."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise status_map.error_for(exc.code(), exc.details() or "") from exc


class GatewayClient:
    """Client of the `FederationGateway` service, bound to one calling domain.

    One client holds one long-lived channel, opened on first use inside the running
    event loop; close it with `await client.close()` or use `async with`.

    With mTLS (the default) the client presents the domain's certificate, from
    `credentials` or the certificates folder (`$FEDGATE_CERTS`, else `.fedgate/certs`).

    Example:
        ```python
        async with GatewayClient("127.0.0.1:7443", domain="finance") as gateway:
            result = await gateway.invoke("risk/score", {"amount": 120})
            print(result.output_or_raise())
        ```

    Raises (from every method): the `gateway.errors` tree, mapped from gRPC statuses,
    for example `PolicyDenied`, `CapabilityNotFound`/`NotFound`, `DomainUnavailable`.
    """

    def __init__(
        self,
        address: str,
        *,
        domain: str,
        agent: str = "",
        credentials: Credentials | None = None,
        insecure: bool = False,
    ) -> None:
        """Creates a client; no connection is made until the first call.

        Args:
            address: The gateway's `host:port`.
            domain: The calling domain; its certificate proves it to the gateway.
            agent: Default agent acting inside the domain, `agent/<name>`, or empty.
            credentials: The domain's certificate, key and CA; None loads them from
                the certificates folder.
            insecure: Plaintext, domain asserted in metadata: local experiments and
                tests against an `--insecure` gateway only.

        Raises:
            gateway.identity.errors.IdentityError: No usable certificate for `domain`
                (the message says how to create one).
        """
        self.address = address
        self.domain = check_name("domain", domain)
        self.agent = check_agent(agent)
        self.credentials = resolve_credentials(
            self.domain, credentials=credentials, insecure=insecure
        )
        """The credentials the client presents; None in insecure mode."""
        self._channel: grpc.aio.Channel | None = None
        self._stub: gw_grpc.FederationGatewayAsyncStub | None = None

    @property
    def stub(self) -> gw_grpc.FederationGatewayAsyncStub:
        """The generated stub over this client's channel (opened on first use)."""
        if self._stub is None:
            self._channel = open_gateway_channel(
                self.address, domain=self.domain, credentials=self.credentials
            )
            self._stub = gw_grpc.FederationGatewayStub(self._channel)
        return self._stub

    @property
    def channel(self) -> grpc.aio.Channel:
        """This client's channel to the gateway (opened on first use), for other stubs."""
        if self._channel is None:
            _ = self.stub
        assert self._channel is not None
        return self._channel

    async def close(self) -> None:
        """Closes the channel; in-flight calls are cancelled."""
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- tasks -------------------------------------------------------------

    async def invoke(
        self,
        target: str,
        input: JSONInput,
        *,
        trace_id: str = "",
        parent_task_id: str = "",
        idempotency_key: str = "",
        timeout: float | None = None,
        call_path: Sequence[str] = (),
        context_refs: Sequence[ContextRef] = (),
        agent: str | None = None,
        wait_for_ready: bool = False,
    ) -> InvokeResult:
        """Invokes a capability and waits for its final outcome.

        Args:
            target: `domain/capability[@version]`.
            input: JSON object or pydantic model; sent as JSON bytes.
            trace_id: Trace to join; empty starts a new one.
            parent_task_id: Task on whose behalf this call is made (nested calls).
            idempotency_key: Makes retries safe: the same key returns the first outcome.
            timeout: Seconds until the call's deadline; None for no deadline.
            call_path: `domain/capability` chain from the root task to the caller's task.
            context_refs: Shared context items to hand to the target.
            agent: Agent acting for this call; None uses the client's default.
            wait_for_ready: Wait (within `timeout`) for an unreachable gateway to come
                back instead of failing at once, for example across its restart.

        Returns:
            The outcome; a failed task is a result, not an exception (see
            `InvokeResult.output_or_raise`).
        """
        request = self._invoke_request(
            target, input, trace_id, parent_task_id, idempotency_key, context_refs, agent
        )
        md = self._task_metadata(trace_id, parent_task_id, call_path, request.agent)
        with translate_rpc_errors():
            response = await self.stub.Invoke(
                request, timeout=timeout, metadata=md, wait_for_ready=wait_for_ready
            )
        return invoke_result_from_proto(response)

    async def invoke_stream(
        self,
        target: str,
        input: JSONInput,
        *,
        trace_id: str = "",
        parent_task_id: str = "",
        idempotency_key: str = "",
        timeout: float | None = None,
        call_path: Sequence[str] = (),
        context_refs: Sequence[ContextRef] = (),
        agent: str | None = None,
    ) -> AsyncGenerator[TaskEvent, None]:
        """Invokes a capability and yields the task's events as they happen.

        Arguments are those of `invoke`. Leaving the loop early cancels the call.

        Yields:
            Events in order; the last one has `final=True`.
        """
        request = self._invoke_request(
            target, input, trace_id, parent_task_id, idempotency_key, context_refs, agent
        )
        md = self._task_metadata(trace_id, parent_task_id, call_path, request.agent)
        call = self.stub.InvokeStream(request, timeout=timeout, metadata=md)
        try:
            with translate_rpc_errors():
                async for message in call:
                    yield event_from_proto(message)
        finally:
            call.cancel()

    # --- registry ----------------------------------------------------------

    async def list_domains(
        self, *, include_offline: bool = False, timeout: float | None = 10.0
    ) -> list[DomainInfo]:
        """Lists registered domains, ordered by name.

        Args:
            include_offline: Include domains with no live endpoint.
            timeout: Seconds until the call's deadline.
        """
        with translate_rpc_errors():
            response = await self.stub.ListDomains(
                gw.ListDomainsRequest(include_offline=include_offline), timeout=timeout
            )
        return [domain_info_from_proto(d) for d in response.domains]

    async def describe_domain(self, name: str, *, timeout: float | None = 10.0) -> DomainInfo:
        """Describes one domain: endpoints, leases and catalog.

        Raises:
            gateway.errors.NotFound: No domain of that name is registered.
        """
        with translate_rpc_errors():
            response = await self.stub.DescribeDomain(
                gw.DescribeDomainRequest(domain=name), timeout=timeout
            )
        return domain_info_from_proto(response)

    async def register(
        self,
        *,
        owner: str,
        endpoint: str,
        catalog: Sequence[CapabilitySpec],
        lease_ttl: timedelta | None = None,
        timeout: float | None = 10.0,
    ) -> Lease:
        """Registers one endpoint of this client's domain and replaces its catalog.

        Args:
            owner: Owning team.
            endpoint: `host:port` the gateway dials to reach the orchestrator.
            catalog: The domain's full catalog.
            lease_ttl: Requested lease length; None lets the gateway choose.
            timeout: Seconds until the call's deadline.
        """
        request = gw.RegisterDomainRequest(
            domain=self.domain,
            owner=owner,
            endpoint=gw.Endpoint(address=endpoint),
            capabilities=[convert.capability_to_proto(c) for c in catalog],
        )
        if lease_ttl is not None:
            request.lease_ttl.CopyFrom(convert.duration_to_proto(lease_ttl))
        with translate_rpc_errors():
            response = await self.stub.RegisterDomain(request, timeout=timeout)
        return lease_from_proto(response)

    async def heartbeat(
        self,
        lease_id: str,
        *,
        lease_ttl: timedelta | None = None,
        timeout: float | None = 10.0,
    ) -> datetime:
        """Renews a lease of this client's domain.

        Args:
            lease_id: The lease to renew.
            lease_ttl: Length to renew for (the one granted at registration); None
                lets the gateway use its default.
            timeout: Seconds until the call's deadline.

        Returns:
            The new expiry time.

        Raises:
            gateway.errors.NotFound: The lease is gone; register again.
        """
        request = gw.HeartbeatRequest(domain=self.domain, lease_id=lease_id)
        if lease_ttl is not None:
            request.lease_ttl.CopyFrom(convert.duration_to_proto(lease_ttl))
        with translate_rpc_errors():
            response = await self.stub.Heartbeat(request, timeout=timeout)
        return convert.timestamp_from_proto(response.lease_expires_at)

    async def deregister(self, lease_id: str = "", *, timeout: float | None = 10.0) -> int:
        """Takes an endpoint (or, with no lease id, every endpoint) out of routing.

        Returns:
            How many endpoints were removed.
        """
        with translate_rpc_errors():
            response = await self.stub.DeregisterDomain(
                gw.DeregisterDomainRequest(domain=self.domain, lease_id=lease_id),
                timeout=timeout,
            )
        return response.removed_endpoints

    # --- helpers -----------------------------------------------------------

    def _invoke_request(
        self,
        target: str,
        input: JSONInput,
        trace_id: str,
        parent_task_id: str,
        idempotency_key: str,
        context_refs: Sequence[ContextRef],
        agent: str | None,
    ) -> gw.InvokeRequest:
        domain, name, version = parse_capability_ref(target)
        return gw.InvokeRequest(
            target=convert.target_to_proto(CapabilityTarget(domain, name, version)),
            input=convert.json_payload(json_object(input)),
            context_refs=[pb.ContextRef(key=r.key, version=r.version) for r in context_refs],
            idempotency_key=idempotency_key,
            trace_id=trace_id,
            parent_task_id=parent_task_id,
            agent=self.agent if agent is None else check_agent(agent),
        )

    def _task_metadata(
        self, trace_id: str, parent_task_id: str, call_path: Sequence[str], agent: str
    ) -> tuple[tuple[str, str], ...]:
        # The caller-domain identity is added by the channel (see channels.py).
        pairs = (
            (metadata.TRACE_ID, trace_id),
            (metadata.PARENT_TASK_ID, parent_task_id),
            (metadata.CALL_PATH, metadata.encode_call_path(tuple(call_path))),
            (metadata.CALLER_AGENT, agent),
        )
        return tuple((k, v) for k, v in pairs if v)
