"""PostgreSQL LISTEN for policy changes: wakes the policy sync when another replica commits one.

One dedicated psycopg 3 connection (autocommit) in a daemon thread, outside the
SQLAlchemy pool. Notifications are a fast path only: a dropped connection is
re-opened with a back-off, and after every (re)connect the listener reports a
change once, since it may have missed some; the periodic version poll of
`PolicySync` covers whatever remains.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from gateway.store.database import POSTGRES_CONNECT_TIMEOUT
from gateway.store.policy_store import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

APPLICATION_NAME = "fedgate-policy-listener"
"""How the listening connection shows in `pg_stat_activity`."""

_WAIT = 0.5
# Seconds a wait for notifications lasts before the stop flag is checked again.
_MAX_BACKOFF = 5.0


def libpq_url(sqlalchemy_url: str) -> str:
    """The listener's libpq URI for a SQLAlchemy PostgreSQL URL (driver dropped, named)."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    extra = {"application_name": APPLICATION_NAME}
    if "connect_timeout" not in url.query:
        extra["connect_timeout"] = str(POSTGRES_CONNECT_TIMEOUT)
    return url.update_query_dict(extra).render_as_string(hide_password=False)


class PgPolicyListener:
    """A `ChangeListener` on PostgreSQL's `fedgate_policy` channel."""

    def __init__(self, sqlalchemy_url: str, *, channel: str = NOTIFY_CHANNEL) -> None:
        self._conninfo = libpq_url(sqlalchemy_url)
        self._channel = channel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        """Set while the LISTEN connection is up (tests wait on it)."""

    def start(self, on_change: Callable[[], None]) -> None:
        """Starts the listening thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(on_change,), name="policy-listener", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread (within about half a second) and closes its connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, on_change: Callable[[], None]) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    self.connected.set()
                    backoff = 0.1
                    on_change()  # anything committed while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=_WAIT, stop_after=1):
                            on_change()
            except psycopg.Error as exc:
                self.connected.clear()
                if self._stop.is_set():
                    break
                log.warning("policy listener: %s; reconnecting in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
        self.connected.clear()
