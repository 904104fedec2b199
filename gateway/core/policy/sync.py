"""Keeps the live policy equal to the store's newest version, on every replica.

Two signals, because notifications can be missed (a dropped LISTEN connection, a
replica that was busy starting): a `ChangeListener` (PostgreSQL LISTEN/NOTIFY)
wakes the loop at once, and a poll of the version number every `poll_interval`
catches anything else. SQLite has no listener: a change made through this process
refreshes it directly, and the poll covers other processes.

A refresh reads the version; only if it differs from the live one does it load
the rules, compile them and swap, each step in a worker thread. If the store is
down the live policy stays in force (logged), never an empty one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from gateway.core.clock import utcnow
from gateway.core.policy.casbin_policy import CasbinPolicy
from gateway.core.policy.compiled import CompiledPolicy, paused_gc
from gateway.core.policy.ports import ChangeListener, PolicyStore
from gateway.core.policy.rules import PolicyRule
from gateway.errors import GatewayError

log = logging.getLogger(__name__)


SEED_ACTOR = "seed"
"""The actor recorded for the first version, seeded from the `policies/` files."""


def open_policy(
    model_text: str,
    store: PolicyStore,
    seed: Sequence[PolicyRule],
    *,
    cache_size: int = 100_000,
) -> CasbinPolicy:
    """The live policy at start-up: seeds an empty store with `seed`, then loads it.

    Blocking (database and compilation): call it before serving or in a thread.
    Replicas starting together seed once: the store lets only one seed version 1.

    Raises:
        StoreUnavailable: The store could not be reached.
    """
    change = store.seed(seed, actor=SEED_ACTOR, now=utcnow())
    if change is not None:
        log.info("policy store seeded: version %d, %d rules", change.version, len(change.added))
    policy_set = store.load()
    return CasbinPolicy(
        model_text, policy_set.rules, version=policy_set.version, cache_size=cache_size
    )


def load_and_compile(policy: CasbinPolicy, store: PolicyStore) -> CompiledPolicy:
    """Reads the store's rules and compiles them for `policy`, not yet installed (blocking).

    The cyclic garbage collector is paused throughout: reading and building create
    a million long-lived objects, and full collections over a large live policy
    would cost more than the work and hold the interpreter for long stretches.
    """
    with paused_gc():
        policy_set = store.load()
        return policy.compile(policy_set.rules, policy_set.version)


class PolicySync:
    """Refreshes a `CasbinPolicy` from a `PolicyStore` on notification and on a timer."""

    def __init__(
        self,
        policy: CasbinPolicy,
        store: PolicyStore,
        *,
        poll_interval: float = 0.5,
        listener: ChangeListener | None = None,
    ) -> None:
        """Args:
        policy: The live policy to keep current.
        store: Where the rules and their version live.
        poll_interval: Seconds between version checks.
        listener: Optional push signal (PostgreSQL LISTEN/NOTIFY).
        """
        self.policy = policy
        self.store = store
        self.poll_interval = poll_interval
        self.listener = listener
        self.reloads = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def refresh(self) -> int:
        """Installs the store's version if it differs from the live one; returns the live version.

        Raises:
            StoreUnavailable: The store could not be read (the live policy stays).
        """
        async with self._lock:
            stored = await asyncio.to_thread(self.store.current_version)
            if stored == self.policy.version:
                return stored
            compiled = await asyncio.to_thread(load_and_compile, self.policy, self.store)
            # The store is the truth: install what it holds even if its version went
            # down (a restored database), but never re-install the live version.
            if compiled.version != self.policy.version:
                self.policy.install(compiled, force=True)
                self.reloads += 1
            return self.policy.version

    def wake(self) -> None:
        """Asks for a refresh now. Safe to call from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Refreshes on every wake-up and poll until cancelled."""
        self._loop = asyncio.get_running_loop()
        if self.listener is not None:
            self.listener.start(self.wake)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
                self._wake.clear()
                try:
                    await self.refresh()
                except GatewayError as exc:
                    log.warning(
                        "policy refresh failed, version %d stays: %s",
                        self.policy.version,
                        exc.message,
                    )
        finally:
            self._loop = None
            if self.listener is not None:
                await asyncio.to_thread(self.listener.stop)
