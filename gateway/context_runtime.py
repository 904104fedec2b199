"""The shared context space's parts for one gateway process, built by the composition root.

SqlContextStore ─▶ ContextSpace ◀── ContextAccess (the shared policy + flows)
                      │   ▲
          purge loop ─┘   └── ChangeSignals ◀── LISTEN fedgate_context (PostgreSQL)
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from gateway.audit.keys import load_or_create_content_key
from gateway.core.content_hash import ContentHasher
from gateway.core.context.access import ContextAccess, ContextPolicy
from gateway.core.context.grant import GrantSigner
from gateway.core.context.space import ContextLimits, ContextSpace
from gateway.core.ports import AuditSink
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.store.context_store import NOTIFY_CHANNEL, SqlContextStore
from gateway.store.policy_listener import PgPolicyListener

log = logging.getLogger(__name__)


@dataclass
class ContextRuntime:
    """The context space, its cross-replica wake-ups and its purge loop."""

    space: ContextSpace
    purge_interval: float
    listener: PgPolicyListener | None = None

    def start_listening(self) -> None:
        """Starts the LISTEN thread (PostgreSQL); call inside the running loop."""
        if self.listener is None:
            return
        loop = asyncio.get_running_loop()
        signals = self.space.signals

        def on_change() -> None:  # runs in the listener's thread
            loop.call_soon_threadsafe(signals.notify_all)

        self.listener.start(on_change)

    def stop_listening(self) -> None:
        """Stops the LISTEN thread, if any."""
        if self.listener is not None:
            self.listener.stop()

    async def purge_forever(self) -> None:
        """Purges expired items every `purge_interval` seconds; their history stays audited."""
        while True:
            await asyncio.sleep(self.purge_interval)
            try:
                purged = await self.space.purge_expired()
            except GatewayError as exc:
                log.warning("context purge: %s", exc.message)
                continue
            if purged:
                log.info("purged %d expired context items", purged)


def open_context_runtime(
    settings: Settings,
    engine: Engine,
    policy: ContextPolicy,
    audit: AuditSink,
    executor: Executor,
) -> ContextRuntime:
    """Builds the context space on a migrated engine (reads the shared content key)."""
    key = load_or_create_content_key(settings.audit.content_key_file(settings.state_dir))
    limits = settings.context
    space = ContextSpace(
        SqlContextStore(engine),
        ContextAccess(policy, ContentHasher(key)),
        audit,
        GrantSigner(key),
        executor=executor,
        limits=ContextLimits(
            default_ttl=limits.default_ttl,
            max_ttl=limits.max_ttl,
            max_value_bytes=limits.max_value_bytes,
            watch_poll_interval=limits.watch_poll_interval,
        ),
    )
    listener = None
    if limits.notify and engine.dialect.name == "postgresql":
        listener = PgPolicyListener(
            engine.url.render_as_string(hide_password=False), channel=NOTIFY_CHANNEL
        )
    return ContextRuntime(space=space, purge_interval=limits.purge_interval, listener=listener)
