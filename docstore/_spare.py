# Generated from docstore/_spare_async.py by .ci/async_to_sync.py: do not edit.
# Change docstore/_spare_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""The pool a store opens: psycopg_pool's, keeping the connection last given back for the
next taker.

A checkout and a return through psycopg_pool (its lock, queue, statistics, health check
and reset) cost more client CPU than a small statement's own execute, and a store pays
both on every call. This pool keeps the connection last given back, when it is idle, as
its spare, and hands it to the next ``getconn`` after the same dead-connection check the
pool runs, much as HikariCP keeps a thread's last connection. Everything else is the
pool's own:

- a connection given back while anyone waits for one goes to the pool, whose waiters
  get it; the spare is one connection at most;
- ``drain`` and ``close`` take the spare back first, and a connection handed out before
  a ``drain`` is never kept when it comes back (the pool closes it);
- a connection is the spare for SPARE_FOR at most, counted from when it last came out of
  the pool; then it goes back through the pool, whose lifetime limit applies to it;
- a connection given back twice, or not handed out by this pool, goes to the pool's own
  ``putconn``, which refuses it as before;
- ``connection()`` goes through ``getconn``/``putconn`` as any caller's does, so code
  sharing the pool (``store.pool``) takes the spare rather than wait behind it.

docstore/_spare.py is generated from this module by .ci/async_to_sync.py: edit this one.
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from ._connect import idle_connection_is_dead

__all__ = ["SPARE_FOR", "SparePool"]

# How long a connection may stay the spare before it goes back through the pool.
SPARE_FOR = 60.0
_IDLE = int(pq.TransactionStatus.IDLE)
# Stamped on each connection the pool hands out: the pool's generation then (drain()
# moves it on) and until when it may be the spare (0: from its first return).
_GENERATION = "_docstore_spare_generation"
_UNTIL = "_docstore_spare_until"


class SparePool(ConnectionPool[Any]):
    """An ``ConnectionPool`` that keeps its last returned connection for the next
    ``getconn`` (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Guards every look-then-act on the fields below. Held across no await, so a
        # threading lock serves both shells (the sync pool is shared by threads).
        self._spare_lock = threading.Lock()
        self._spare: psycopg.Connection[Any] | None = None
        self._takers = 0  # getconn calls waiting on the pool: returns go to them
        self._generation = 0
        self._closing = False
        self._reuses = 0

    def getconn(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        """The spare, if there is one still alive, else a connection of the pool."""
        with self._spare_lock:
            conn, self._spare = self._spare, None
            if conn is None:
                self._takers += 1
            else:
                self._reuses += 1
        if conn is not None:
            if not idle_connection_is_dead(conn):
                return conn
            setattr(conn, _GENERATION, None)
            conn.close()  # closed, the pool discards it rather than hand it out again
            super().putconn(conn)
            with self._spare_lock:
                self._takers += 1
        try:
            fresh: psycopg.Connection[Any] = super().getconn(timeout)
        finally:
            with self._spare_lock:
                self._takers -= 1
        setattr(fresh, _GENERATION, self._generation)
        setattr(fresh, _UNTIL, 0.0)
        return fresh

    def putconn(self, conn: psycopg.Connection[Any]) -> None:
        """Keep ``conn`` as the spare if it may be (see the module's docstring), else give
        it back to the pool."""
        if conn.pgconn.transaction_status == _IDLE and getattr(conn, _GENERATION, None) == self._generation:
            now = monotonic()
            until: float = getattr(conn, _UNTIL)
            if not until:
                until = now + SPARE_FOR
                setattr(conn, _UNTIL, until)
            if now < until:
                with self._spare_lock:
                    if self._spare is conn:
                        raise ValueError("this connection was given back already")
                    if (
                        self._spare is None
                        and not self._takers
                        and not self._closing
                        and getattr(conn, _GENERATION, None) == self._generation
                    ):
                        self._spare = conn
                        return
        # Through the pool: unstamped, so that giving it back again reaches the pool's
        # own refusal rather than make it the spare while the pool holds it too.
        setattr(conn, _GENERATION, None)
        super().putconn(conn)

    def close(self, timeout: float = 5.0) -> None:
        """Close the pool, the spare with it."""
        with self._spare_lock:
            self._closing = True
            conn, self._spare = self._spare, None
        try:
            if conn is not None:
                setattr(conn, _GENERATION, None)
                super().putconn(conn)
        finally:
            super().close(timeout)

    def drain(self) -> None:
        """Replace every connection (psycopg_pool's ``drain``): the spare now, and those
        out at the call when they come back."""
        with self._spare_lock:
            self._generation += 1
            conn, self._spare = self._spare, None
        if conn is not None:
            setattr(conn, _GENERATION, None)
            super().putconn(conn)
        super().drain()

    def get_stats(self) -> dict[str, int]:
        """The pool's statistics, with the spare: available while kept, and each of its
        reuses a request (``requests_spare`` counts those)."""
        return self._with_spare(super().get_stats(), False)

    def pop_stats(self) -> dict[str, int]:
        """As :meth:`get_stats`, and reset the counters."""
        return self._with_spare(super().pop_stats(), True)

    def _with_spare(self, stats: dict[str, int], reset: bool) -> dict[str, int]:
        with self._spare_lock:
            reuses, kept = self._reuses, self._spare is not None
            if reset:
                self._reuses = 0
        stats["requests_spare"] = reuses
        if reuses:
            stats["requests_num"] = stats.get("requests_num", 0) + reuses
        if kept:
            stats["pool_available"] = stats.get("pool_available", 0) + 1
        return stats
