"""Composition root: builds the gateway from settings and its parts, and runs it.

`build_gateway(settings)` returns a `GatewayApp`; `await app.start()` binds the
listen address (port 0 picks a free port) and returns the bound port, so tests
and `fedgate serve` share one construction path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine

from federation.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    context_pb2,
    context_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    policy_pb2,
    policy_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from gateway.audit.reader import AuditReader
from gateway.audit.trail import open_audit_trail
from gateway.audit.writer import DurableAuditSink
from gateway.context_runtime import ContextRuntime, open_context_runtime
from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.circuit_breaker import BreakerBoard, BreakerPolicy
from gateway.core.context.invoke_step import ContextStep
from gateway.core.endpoint_health import EjectionPolicy, EndpointHealth
from gateway.core.idempotency import IdempotencyStep, IdempotencyStore
from gateway.core.invoke_steps import (
    AuditOutcomeStep,
    AuditRequestStep,
    CallChainStep,
    InvokeStep,
    PolicyStep,
    QuotaStep,
    ResolveStep,
    ValidateStep,
)
from gateway.core.lease import LeasePolicy
from gateway.core.pipeline import InvokePipeline
from gateway.core.policy import CasbinPolicy
from gateway.core.ports import AuditSink, PolicyDecider, RegistryStore
from gateway.core.quota import QuotaBook, Rate
from gateway.core.registry import Registry
from gateway.core.retry_policy import RetryPolicy
from gateway.core.router import Router
from gateway.core.schema import InputValidator
from gateway.core.task_table import TaskTable
from gateway.core.tasks.manager import TaskConfig, TaskManager
from gateway.errors import GatewayError
from gateway.identity.credentials import Credentials
from gateway.policy_runtime import PolicyRuntime, open_policy_runtime
from gateway.services.audit_service import AuditService
from gateway.services.channels import ChannelPool, channel_options
from gateway.services.context_service import ContextService
from gateway.services.domain_transport import GrpcDomainTransport
from gateway.services.gateway_service import GatewayService
from gateway.services.health_prober import HealthProber
from gateway.services.identity import IdentityInterceptor
from gateway.services.policy_service import PolicyService
from gateway.services.task_service import TaskService
from gateway.services.tls import INSECURE_WARNING, gateway_credentials, server_credentials
from gateway.settings import RateSettings, Settings, TaskSettings
from gateway.store.database import migrate, open_engine
from gateway.store.idempotency_store import SqlIdempotencyStore
from gateway.store.registry_store import SqlRegistryStore
from gateway.store.task_store import SqlTaskStore

log = logging.getLogger(__name__)

KEY_PURGE_INTERVAL = 60.0
"""Seconds between purges of expired idempotency keys."""

GATEWAY_SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["FederationGateway"].full_name
POLICY_SERVICE = policy_pb2.DESCRIPTOR.services_by_name["PolicyAdmin"].full_name
AUDIT_SERVICE = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
CONTEXT_SERVICE = context_pb2.DESCRIPTOR.services_by_name["ContextService"].full_name
TASK_SERVICE = tasks_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name


@dataclass
class GatewayApp:
    """A built, not yet started gateway: server, registry and background work."""

    settings: Settings
    server: grpc.aio.Server
    registry: Registry
    transport: GrpcDomainTransport
    pool: ChannelPool
    audit: AuditSink
    health: health_aio.HealthServicer
    router: Router | None = None
    """Routing state (health, breakers) of this gateway."""
    prober: HealthProber | None = None
    """Active health checks of endpoints (None: off)."""
    idempotency: IdempotencyStore | None = None
    """Idempotency keys (None: keys are passed to domains but not remembered)."""
    engine: Engine | None = None
    """The database engine the gateway opened itself (disposed on stop)."""
    audit_writer: DurableAuditSink | None = None
    """The audit writer the gateway opened itself (drained and closed on stop)."""
    policy_runtime: PolicyRuntime | None = None
    """The shared policy from the store and its sync (None when a policy was passed in)."""
    store_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="store")
    )
    """Threads for blocking store calls, off the event loop."""
    credentials: Credentials | None = None
    """The gateway's certificate, key and CA; None in insecure mode."""
    context: ContextRuntime | None = None
    """The shared context space (None when the gateway was given parts without a database)."""
    tasks: TaskManager | None = None
    """Long-running tasks (None when the gateway has no database of its own)."""
    port: int = 0
    _background: list[asyncio.Task[None]] = field(default_factory=list)
    _unrecorded: list[AuditEvent] = field(default_factory=list)
    """Lease expiries the audit trail could not take yet; retried every reaper cycle."""

    @property
    def address(self) -> str:
        """`host:port` the gateway listens on (valid after `start`)."""
        host = self.settings.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    async def start(self) -> int:
        """Loads the routing view, binds, starts serving and the reaper; returns the port."""
        await self.registry.refresh()
        if self.credentials is None:
            self.port = self.server.add_insecure_port(self.settings.listen)
        else:
            self.port = self.server.add_secure_port(
                self.settings.listen, server_credentials(self.credentials)
            )
        if self.port == 0:
            raise OSError(f"could not bind {self.settings.listen}")
        await self.server.start()
        for service in ("", GATEWAY_SERVICE):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._background.append(asyncio.create_task(self._reap_forever(), name="lease-reaper"))
        self._background.append(
            asyncio.create_task(self._summarize_renewals_forever(), name="renewal-audit")
        )
        if self.policy_runtime is not None:
            self._background.append(
                asyncio.create_task(self.policy_runtime.sync.run(), name="policy-sync")
            )
        if self.context is not None:
            self.context.start_listening()
            self._background.append(
                asyncio.create_task(self.context.purge_forever(), name="context-purge")
            )
        if self.prober is not None and self.settings.resilience.probe_interval > 0:
            self._background.append(asyncio.create_task(self._probe_forever(), name="prober"))
        if self.tasks is not None:
            self.tasks.start()  # first re-attaches to this instance's tasks from before
        log.info(
            "gateway serving on %s (%s)",
            self.address,
            "INSECURE" if self.credentials is None else f"mTLS as {self.credentials.identity}",
        )
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Stops accepting calls, lets running ones finish within `grace`, closes channels."""
        await self.health.enter_graceful_shutdown()
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        if self.context is not None:
            await asyncio.to_thread(self.context.stop_listening)
        if self.tasks is not None:
            # Long-running tasks keep running in their domains; whoever starts next
            # (this instance again, or a replica once the leases ran out) re-attaches.
            await self.tasks.close()
        await self.server.stop(self.settings.grace_period if grace is None else grace)
        await self.transport.close()
        # Canceled handlers may have left store calls running in threads: wait for
        # them before the engine goes, so no connection is left open.
        await asyncio.to_thread(self.store_executor.shutdown, True)
        if self.audit_writer is not None:
            await self.audit_writer.aclose()
        if self.engine is not None:
            self.engine.dispose()

    async def _reap_forever(self) -> None:
        interval = self.settings.lease.reaper_interval
        next_purge = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            if self.idempotency is not None and loop.time() >= next_purge:
                next_purge = loop.time() + KEY_PURGE_INTERVAL
                await self._purge_keys(self.idempotency)
            try:
                expired = await self.registry.reap()
            except GatewayError as exc:
                log.warning("lease reaper: %s", exc.message)
                continue
            for endpoint in expired:
                await self.transport.discard(endpoint.address)
                if self.router is not None:
                    self.router.forget(endpoint.address)
            self._unrecorded += [
                AuditEvent(
                    type=EventType.LEASE_EXPIRED,
                    actor="gateway",
                    target_domain=e.domain,
                    outcome="expired",
                    attributes={"address": e.address, "lease_id": e.lease_id},
                )
                for e in expired
            ]
            if not self._unrecorded:
                continue
            try:
                # The endpoints are out of routing either way; their expiry records
                # wait here while the audit trail is unavailable (same event ids, so a
                # write that did commit is not duplicated).
                await self.audit.record(self._unrecorded)
            except GatewayError as exc:
                log.warning("lease expiries not recorded yet: %s", exc.message)
                continue
            self._unrecorded = []

    async def _purge_keys(self, idempotency: IdempotencyStore) -> None:
        now = self.registry.now()
        try:
            purged = await asyncio.get_running_loop().run_in_executor(
                self.store_executor, lambda: idempotency.purge_expired(now=now)
            )
        except GatewayError as exc:
            log.warning("idempotency key purge: %s", exc.message)
            return
        if purged:
            log.info("purged %d expired idempotency keys", purged)

    async def _summarize_renewals_forever(self) -> None:
        # Heartbeats are too many to record one by one: one record per interval
        # counts the renewals of every domain (none when there were none).
        while True:
            await asyncio.sleep(self.settings.audit.renewal_summary_every)
            renewals = self.registry.take_renewals()
            if not renewals:
                continue
            try:
                await self.audit.record(
                    [
                        AuditEvent(
                            type=EventType.LEASES_RENEWED,
                            actor="gateway",
                            outcome="renewed",
                            attributes={
                                "renewals": renewals,
                                "seconds": self.settings.audit.renewal_summary_every,
                            },
                        )
                    ]
                )
            except GatewayError as exc:
                log.warning("could not record lease renewals: %s", exc.message)

    async def _probe_forever(self) -> None:
        assert self.prober is not None
        while True:
            await asyncio.sleep(self.settings.resilience.probe_interval)
            await self.prober.probe_all()


def build_gateway(
    settings: Settings,
    *,
    store: RegistryStore | None = None,
    policy: PolicyDecider | None = None,
    audit: AuditSink | None = None,
    idempotency: IdempotencyStore | None = None,
) -> GatewayApp:
    """Builds the gateway from settings; parts may be passed in to replace the defaults.

    Raises:
        gateway.identity.errors.IdentityError: mTLS is on (the default) and the
            gateway's certificate, key or CA is missing or unusable.
    """
    credentials = gateway_credentials(settings)
    if credentials is None:
        log.warning(INSECURE_WARNING)
    engine: Engine | None = None
    if store is None or policy is None:
        engine = open_engine(settings.effective_database_url)
        migrate(engine)
        store = store or SqlRegistryStore(engine)
        idempotency = idempotency or SqlIdempotencyStore(engine)
    policy_runtime: PolicyRuntime | None = None
    if policy is None:
        assert engine is not None
        # The shared policy from the database (seeded from policies/ at first start).
        policy_runtime = open_policy_runtime(settings.policy, engine)
        policy = policy_runtime.policy
        log.info(
            "shared policy version %d (%d rules)",
            policy_runtime.policy.version,
            len(policy_runtime.policy.compiled),
        )
    audit_writer: DurableAuditSink | None = None
    if audit is None:
        if engine is None:
            engine = open_engine(settings.effective_database_url)
            migrate(engine)
        # The durable, tamper-evident trail (strict mode: calls wait for their records).
        audit = audit_writer = open_audit_trail(settings, engine)
    store_executor = ThreadPoolExecutor(4, thread_name_prefix="store")
    registry = Registry(
        store,
        LeasePolicy(
            default_ttl=settings.lease.default_ttl,
            min_ttl=settings.lease.min_ttl,
            max_ttl=settings.lease.max_ttl,
        ),
        executor=store_executor,
    )
    pool = ChannelPool(settings.max_message_bytes, credentials=credentials)
    transport = GrpcDomainTransport(pool, audit=audit)
    resilience = settings.resilience
    router = Router(
        registry,
        transport,
        default_timeout=settings.routing.default_timeout,
        retries=RetryPolicy(
            max_attempts=resilience.retry_attempts,
            base_backoff=resilience.retry_base_backoff,
            max_backoff=resilience.retry_max_backoff,
        ),
        breakers=BreakerBoard(
            BreakerPolicy(
                window=resilience.breaker_window,
                min_calls=resilience.breaker_min_calls,
                failure_ratio=resilience.breaker_failure_ratio,
                cooldown=resilience.breaker_cooldown,
            )
        ),
        health=EndpointHealth(EjectionPolicy(eject_after=resilience.eject_after)),
    )
    context: ContextRuntime | None = None
    if engine is not None and isinstance(policy, CasbinPolicy):
        context = open_context_runtime(settings, engine, policy, audit, store_executor)
    tasks = TaskTable()
    steps: list[InvokeStep] = [
        AuditOutcomeStep(audit),
        QuotaStep(_quota_book(settings)),
        *(
            [
                IdempotencyStep(
                    idempotency,
                    ttl=timedelta(seconds=settings.routing.idempotency_ttl),
                    executor=store_executor,
                )
            ]
            if idempotency is not None
            else []
        ),
        ResolveStep(registry, policy),
        CallChainStep(tasks, router, max_depth=settings.routing.max_depth),
        PolicyStep(policy),
        ValidateStep(InputValidator()),
        *([ContextStep(context.space)] if context is not None else []),
        AuditRequestStep(audit),
    ]
    pipeline = InvokePipeline(steps, router)

    identity = IdentityInterceptor(
        audit, trust_domain=None if credentials is None else credentials.trust_domain
    )
    server = grpc.aio.server(
        options=channel_options(settings.max_message_bytes), interceptors=[identity]
    )
    gateway_pb2_grpc.add_FederationGatewayServicer_to_server(
        GatewayService(registry, pipeline, audit, policy=policy), server
    )
    if policy_runtime is not None:
        policy_runtime.admin.audit = audit  # admin decisions and changes go on the trail
        policy_pb2_grpc.add_PolicyAdminServicer_to_server(
            PolicyService(policy_runtime.admin), server
        )
    if context is not None:
        context_pb2_grpc.add_ContextServiceServicer_to_server(ContextService(context.space), server)
    task_manager: TaskManager | None = None
    if engine is not None:
        task_manager = TaskManager(
            pipeline=pipeline,
            store=SqlTaskStore(engine),
            link=transport,
            registry=registry,
            policy=policy,
            audit=audit,
            config=_task_config(settings.tasks, settings.state_dir),
            executor=store_executor,
            idempotency=idempotency,
        )
        tasks_pb2_grpc.add_TaskServiceServicer_to_server(TaskService(task_manager), server)
    audit_reader = _audit_reader(settings, audit_writer, policy, registry)
    if audit_reader is not None:
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditService(audit_reader), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (
            GATEWAY_SERVICE,
            *((POLICY_SERVICE,) if policy_runtime is not None else ()),
            *((AUDIT_SERVICE,) if audit_reader is not None else ()),
            *((CONTEXT_SERVICE,) if context is not None else ()),
            *((TASK_SERVICE,) if task_manager is not None else ()),
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    prober = HealthProber(registry, pool, router.health, timeout=resilience.probe_timeout)
    return GatewayApp(
        settings=settings,
        server=server,
        registry=registry,
        transport=transport,
        pool=pool,
        audit=audit,
        health=health,
        engine=engine,
        audit_writer=audit_writer,
        policy_runtime=policy_runtime,
        store_executor=store_executor,
        router=router,
        prober=prober,
        idempotency=idempotency,
        credentials=credentials,
        context=context,
        tasks=task_manager,
    )


def _task_config(tasks: TaskSettings, state_dir: Path) -> TaskConfig:
    """Task settings, with this instance's id (created once in the state folder)."""
    instance = tasks.instance
    if not instance:
        # Stable across restarts, so a restarted gateway takes its own tasks back at
        # once instead of waiting for their leases to run out.
        path = state_dir / "gateway-instance"
        try:
            instance = path.read_text().strip()
        except FileNotFoundError:
            instance = f"gw-{secrets.token_hex(6)}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(instance + "\n")
    return TaskConfig(
        instance=instance,
        lease_ttl=tasks.lease_ttl,
        default_timeout=tasks.default_timeout,
        reattach_grace=tasks.reattach_grace,
        poll_interval=tasks.poll_interval,
    )


def _quota_book(settings: Settings) -> QuotaBook:
    quotas = settings.quotas

    def rate(r: RateSettings) -> Rate:
        return Rate(per_second=r.per_second, burst=r.burst)

    pairs: dict[tuple[str, str], Rate] = {}
    for key, limit in quotas.per_pair.items():
        caller, _, target = key.partition("->")
        pairs[(caller, target)] = rate(limit)
    return QuotaBook(
        per_caller={caller: rate(r) for caller, r in quotas.per_caller.items()},
        per_pair=pairs,
        default_per_caller=rate(quotas.default_per_caller) if quotas.default_per_caller else None,
    )


def _audit_reader(
    settings: Settings,
    writer: DurableAuditSink | None,
    policy: PolicyDecider,
    registry: Registry,
) -> AuditReader | None:
    """Compliance reads of the trail the gateway writes (none for a sink passed in)."""
    if writer is None or writer.checkpointer is None:
        return None
    return AuditReader(
        writer.store,
        policy,
        lambda: [d.name for d in registry.list_domains()],
        signer=writer.checkpointer.signer,
        origin=settings.audit.origin,
        sink=writer,
    )


async def serve(settings: Settings, *, ready_file: Path | None = None) -> None:
    """Runs the gateway until SIGINT or SIGTERM, then shuts down gracefully.

    When `ready_file` is given, the bound `host:port` is written there once the
    gateway serves, so scripts can start it on port 0 and find it.
    """
    app = build_gateway(settings)
    await app.start()
    if ready_file is not None:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(app.address)
        tmp.replace(ready_file)  # atomic: readers never see a half-written address
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down (grace %.1fs)", settings.grace_period)
        await app.stop()
