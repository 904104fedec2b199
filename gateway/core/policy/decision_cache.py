"""A bounded LRU cache of policy decisions, keyed by policy build and request.

A key starts with the policy's version and build serial, so a new policy version
never sees the old one's decisions: they are simply never asked for again and age
out. `clear()` drops them at once when a new version is installed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from gateway.core.decision import Decision


class DecisionCache:
    """Least-recently-used decisions, at most `maxsize`. Thread-safe."""

    def __init__(self, maxsize: int = 100_000) -> None:
        """Args: maxsize: most decisions kept; 0 disables the cache."""
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, Decision] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Decision | None:
        """The cached decision for `key` (now the most recently used), or None."""
        with self._lock:
            decision = self._entries.get(key)
            if decision is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return decision

    def put(self, key: Hashable, decision: Decision) -> None:
        """Stores a decision, evicting the least recently used one when full."""
        if self.maxsize <= 0:
            return
        with self._lock:
            self._entries[key] = decision
            self._entries.move_to_end(key)
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forgets every decision."""
        with self._lock:
            self._entries.clear()
