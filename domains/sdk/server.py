"""`DomainServer`: a domain's orchestrator as a running gRPC server.

The server carries the orchestrator service, the standard health service and
server reflection. With a gateway address it also keeps the endpoint registered
(`LeaseKeeper`) and routes handlers' nested calls through one `GatewayClient`,
so the process holds one channel to the gateway for everything.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from domains.sdk.channels import resolve_credentials
from domains.sdk.domain import Domain
from domains.sdk.gateway_client import GatewayClient
from domains.sdk.lease import LeaseKeeper
from domains.sdk.orchestrator_service import SERVICE_NAME, OrchestratorService
from federation.v1 import orchestrator_pb2_grpc as orch_grpc
from gateway.identity.credentials import Credentials
from gateway.identity.spiffe import gateway_id
from gateway.services.tls import server_credentials

log = logging.getLogger(__name__)

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "[::]", "::"})

_SERVER_OPTIONS: list[tuple[str, int]] = [
    # The gateway keeps long-lived channels to every endpoint and pings them every
    # 30s; gRPC's default policing (one ping per 5 minutes without data) would
    # answer those pings with GOAWAY during long tasks.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


class DomainServer:
    """Serves one domain's orchestrator and, optionally, keeps it registered.

    Example:
        ```python
        server = DomainServer(domain, gateway="127.0.0.1:7443")
        await server.start()
        print(server.address)        # 127.0.0.1:<bound port>
        ...
        await server.stop(grace=5.0)   # deregisters, then drains
        ```
    """

    def __init__(
        self,
        domain: Domain,
        *,
        listen: str = "127.0.0.1:0",
        gateway: str | None = None,
        advertise: str | None = None,
        lease_ttl: float | None = None,
        retry_backoff: float = 0.2,
        credentials: Credentials | None = None,
        insecure: bool = False,
        journal: Path | None = None,
    ) -> None:
        """Creates a server; nothing is bound until `start`.

        With mTLS (the default) the server presents the domain's certificate, accepts
        only clients with certificates of the federation CA, and runs tasks only for
        the gateway; registration and nested calls present the same certificate.

        Args:
            domain: The domain to serve.
            listen: `host:port` to bind; port 0 picks a free port.
            gateway: The gateway's `host:port`; None serves without registering.
            advertise: `host:port` the gateway should dial; defaults to the bound
                address. Required with a gateway when `listen` binds every interface.
            lease_ttl: Requested lease length in seconds; None lets the gateway choose.
            retry_backoff: First pause in seconds after a failed gateway call.
            credentials: The domain's certificate, key and CA; None loads them from
                the certificates folder (`$FEDGATE_CERTS`, else `.fedgate/certs`).
            insecure: Plaintext, no certificates: local experiments and tests only.
            journal: File that gets one line per task run (see `OrchestratorService`).

        Raises:
            ValueError: A gateway is given, `listen` binds every interface and no
                `advertise` address says where the gateway can dial.
            gateway.identity.errors.IdentityError: No usable certificate for the
                domain (the message says how to create one).
        """
        host = listen.rpartition(":")[0]
        if gateway and advertise is None and host in _WILDCARD_HOSTS:
            raise ValueError(
                f"listen={listen!r} binds every interface; set advertise= to the host:port "
                "the gateway can dial"
            )
        self.domain = domain
        self.credentials = resolve_credentials(
            domain.name, credentials=credentials, insecure=insecure
        )
        """What the server and its gateway client present; None in insecure mode."""
        self._listen = listen
        self._host = host
        self._gateway_address = gateway
        self._advertise = advertise
        self._lease_ttl = None if lease_ttl is None else timedelta(seconds=lease_ttl)
        self._retry_backoff = retry_backoff
        self._journal = journal
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._port = 0
        self.gateway: GatewayClient | None = None
        """Client for the gateway (shared by registration and nested calls), if any."""
        self.lease_keeper: LeaseKeeper | None = None
        """Keeps the endpoint registered while the server runs with a gateway."""
        self.service = OrchestratorService(domain)
        """The orchestrator service (rebuilt on `start` with the gateway client)."""

    @property
    def port(self) -> int:
        """The bound port (0 before `start`)."""
        return self._port

    @property
    def address(self) -> str:
        """The endpoint address: `advertise` if given, else the bound `host:port`.

        Raises:
            RuntimeError: The server has not started.
        """
        if not self._port:
            raise RuntimeError("the server has not started")
        return self._advertise or f"{self._host}:{self._port}"

    async def start(self) -> None:
        """Binds, starts serving and, with a gateway, starts registering in the background.

        Registration does not block: while the gateway is unreachable the server
        serves and keeps retrying. Await `lease_keeper.wait_registered()` to wait.

        Raises:
            RuntimeError: Already started.
            OSError: The listen address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the server is already running")
        if self._gateway_address:
            self.gateway = GatewayClient(
                self._gateway_address,
                domain=self.domain.name,
                credentials=self.credentials,
                insecure=self.credentials is None,
            )
        only_caller = (
            "" if self.credentials is None else str(gateway_id(self.credentials.trust_domain))
        )
        self.service = OrchestratorService(
            self.domain, gateway=self.gateway, only_caller=only_caller, journal=self._journal
        )
        server = grpc.aio.server(options=_SERVER_OPTIONS)
        orch_grpc.add_DomainOrchestratorServicer_to_server(self.service, server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        if self.credentials is None:
            port = server.add_insecure_port(self._listen)
        else:
            port = server.add_secure_port(self._listen, server_credentials(self.credentials))
        if not port:
            raise OSError(f"could not bind {self._listen}")
        await server.start()
        self._server, self._port = server, port
        for service in ("", SERVICE_NAME):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("domain %s: serving at %s", self.domain.name, self.address)
        if self.gateway is not None:
            self.lease_keeper = LeaseKeeper(
                self.gateway,
                owner=self.domain.owner,
                endpoint=self.address,
                catalog=self.domain.catalog(),
                lease_ttl=self._lease_ttl,
                retry_backoff=self._retry_backoff,
            )
            self.lease_keeper.start()

    async def stop(self, grace: float | None = 5.0) -> None:
        """Deregisters, then stops serving after letting running tasks finish.

        Args:
            grace: Seconds running tasks get before they are canceled; None waits
                for them without limit, 0 cancels at once.
        """
        server, self._server = self._server, None
        if server is None:
            return
        # Leave routing first so the gateway sends no new tasks while we drain.
        if self.lease_keeper is not None:
            await self.lease_keeper.stop(deregister=True)
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        await server.stop(grace)
        await self.service.shutdown()
        if self.gateway is not None:
            await self.gateway.close()
        log.info("domain %s: stopped", self.domain.name)

    async def __aenter__(self) -> DomainServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_domain(
    domain: Domain,
    *,
    gateway: str | None,
    listen: str = "127.0.0.1:0",
    advertise: str | None = None,
    lease_ttl: float | None = None,
    grace: float = 5.0,
    credentials: Credentials | None = None,
    insecure: bool = False,
    journal: Path | None = None,
) -> None:
    """Serves a domain until SIGINT or SIGTERM, then shuts down cleanly.

    For `python -m domains.<name>` entry points:

        ```python
        if __name__ == "__main__":
            asyncio.run(run_domain(domain, gateway="127.0.0.1:7443"))
        ```

    Args:
        domain: The domain to serve.
        gateway: The gateway's `host:port`; None serves without registering.
        listen: `host:port` to bind.
        advertise: `host:port` the gateway should dial (see `DomainServer`).
        lease_ttl: Requested lease length in seconds.
        grace: Seconds running tasks get to finish on shutdown.
        credentials: The domain's certificate, key and CA; None loads them from the
            certificates folder (`$FEDGATE_CERTS`, else `.fedgate/certs`).
        insecure: Plaintext, no certificates: local experiments only.
        journal: File that gets one line per task run (see `OrchestratorService`).
    """
    server = DomainServer(
        domain,
        listen=listen,
        gateway=gateway,
        advertise=advertise,
        lease_ttl=lease_ttl,
        credentials=credentials,
        insecure=insecure,
        journal=journal,
    )
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except (NotImplementedError, RuntimeError):
            # No signal handlers off the main thread or on Windows: a KeyboardInterrupt
            # or task cancellation still reaches the `finally` below.
            continue
        installed.append(sig)
    try:
        await stopping.wait()
        log.info("domain %s: shutting down", domain.name)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await server.stop(grace)
