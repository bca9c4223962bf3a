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
from psycopg_pool import AsyncConnectionPool

from ._connect import idle_connection_is_dead

__all__ = ["SPARE_FOR", "AsyncSparePool"]

# How long a connection may be the spare after it last left the pool: then it goes back
# through the pool, whose lifetime limit applies to it there.
SPARE_FOR = 60.0
_IDLE = int(pq.TransactionStatus.IDLE)
# Stamped on each connection the pool hands out: the pool's token then (a new object at
# each drain(), and one per pool, so that no other pool's connection matches) and until
# when it may be the spare.
_TOKEN = "_docstore_spare_token"
_UNTIL = "_docstore_spare_until"


class AsyncSparePool(AsyncConnectionPool[Any]):
    """An ``AsyncConnectionPool`` that keeps its last returned connection for the next
    ``getconn`` (see the module's docstring). ``reset`` and ``close_returns`` are
    refused: a reset must run on every return, and closing a connection must not return
    it (a store opens a plain pool for them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("reset") is not None or kwargs.get("close_returns"):
            raise ValueError("a spare pool takes no reset= nor close_returns=: use AsyncConnectionPool")
        super().__init__(*args, **kwargs)
        # Guards every look-then-act on the fields below. Held across no await, so a
        # threading lock serves both shells (the sync pool is shared by threads).
        self._spare_lock = threading.Lock()
        self._spare: psycopg.AsyncConnection[Any] | None = None
        self._takers = 0  # getconn calls waiting on the pool: returns go to them
        self._token = object()
        self._closing = False
        self._reuses = 0

    async def getconn(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:
        """The spare, if there is one still alive and in its time, else a connection of
        the pool."""
        with self._spare_lock:
            conn, self._spare = self._spare, None
            if conn is None:
                self._takers += 1
                token = self._token
            else:
                self._reuses += 1
        while conn is not None:
            dead = idle_connection_is_dead(conn)
            if not dead and monotonic() < getattr(conn, _UNTIL):
                return conn
            # Past its time, or dead: back through the pool, which checks its lifetime,
            # or discards it closed.
            setattr(conn, _TOKEN, None)
            if dead:
                await conn.close()
            with self._spare_lock:
                self._reuses -= 1
                self._takers += 1  # before the return below, so a waiter gets it
                token = self._token
            await super().putconn(conn)
            with self._spare_lock:
                conn, self._spare = self._spare, None
                if conn is not None:
                    self._takers -= 1
                    self._reuses += 1
        try:
            fresh: psycopg.AsyncConnection[Any] = await super().getconn(timeout)
        finally:
            with self._spare_lock:
                self._takers -= 1
        # The token of when it was asked for: a drain() while it waited makes it stale.
        setattr(fresh, _TOKEN, token)
        setattr(fresh, _UNTIL, monotonic() + SPARE_FOR)
        return fresh

    async def putconn(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Keep ``conn`` as the spare if it may be (see the module's docstring), else give
        it back to the pool."""
        keep = (
            conn.pgconn.transaction_status == _IDLE
            and getattr(conn, _TOKEN, None) is self._token
            and monotonic() < getattr(conn, _UNTIL)
        )
        with self._spare_lock:
            if self._spare is conn:
                raise ValueError("this connection was given back already")
            if (
                keep
                and self._spare is None
                and not self._takers
                and not self._closing
                and getattr(conn, _TOKEN, None) is self._token
            ):
                self._spare = conn
                return
        # Through the pool: unstamped, so that giving it back again reaches the pool's
        # own refusal rather than make it the spare while the pool holds it too.
        setattr(conn, _TOKEN, None)
        await super().putconn(conn)

    async def close(self, timeout: float = 5.0) -> None:
        """Close the pool, the spare with it."""
        with self._spare_lock:
            self._closing = True
            conn, self._spare = self._spare, None
        try:
            if conn is not None:
                setattr(conn, _TOKEN, None)
                await super().putconn(conn)
        finally:
            await super().close(timeout)

    async def drain(self) -> None:
        """Replace every connection (psycopg_pool's ``drain``): the spare, and those out
        at the call when they come back."""
        with self._spare_lock:
            self._token = object()
            conn, self._spare = self._spare, None
        await super().drain()
        if conn is not None:  # after the drain, so that the pool closes it
            setattr(conn, _TOKEN, None)
            await super().putconn(conn)

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
