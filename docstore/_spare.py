# Generated from docstore/_spare_async.py by .ci/async_to_sync.py: do not edit.
# Change docstore/_spare_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""The pool a store opens: psycopg_pool's, keeping the connection last given back for the
next taker.

A checkout and a return through psycopg_pool (its lock, queue, statistics, health check
and reset) cost more client CPU than a small statement's own execute, and a store pays
both on every call. This pool keeps the connection last given back, when it is idle, as
its spare, and hands it to the next ``getconn`` after the same dead-connection check the
pool runs, much as HikariCP keeps a thread's last connection. Everything else is the
pool's own: a taker while the spare is out waits on the pool as before; ``close`` and
``drain`` take the spare back first; a spare kept longer than SPARE_FOR goes back
through the pool, whose lifetime limit then applies to it; and ``connection()`` goes
through ``getconn``/``putconn`` as any caller's does, so code sharing the pool
(``store.pool``) takes the spare rather than wait behind it.

docstore/_spare.py is generated from this module by .ci/async_to_sync.py: edit this one.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from ._connect import idle_connection_is_dead

__all__ = ["SPARE_FOR", "SparePool"]

# How long one connection may stay the spare before it goes back through the pool.
SPARE_FOR = 60.0
_IDLE = int(pq.TransactionStatus.IDLE)


class SparePool(ConnectionPool[Any]):
    """An ``ConnectionPool`` that keeps its last returned connection for the next
    ``getconn`` (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spare: list[psycopg.Connection[Any]] = []
        # One entry per getconn under way (a list: append and pop are atomic between
        # threads, where `+= 1` is not): while any is, a connection given back goes to the
        # pool, whose waiters must get it, not to the spare.
        self._takers: list[None] = []
        self._spare_now: psycopg.Connection[Any] | None = None
        self._spare_until = 0.0

    def getconn(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        """The spare, if there is one still alive, else a connection of the pool."""
        self._takers.append(None)
        try:
            while self._spare:
                try:
                    conn = self._spare.pop()
                except IndexError:  # another thread took it between the look and the pop
                    break
                if not idle_connection_is_dead(conn):
                    return conn
                conn.close()  # closed, the pool discards it rather than hand it out again
                super().putconn(conn)
            fresh: psycopg.Connection[Any] = super().getconn(timeout)
            return fresh
        finally:
            self._takers.pop()

    def putconn(self, conn: psycopg.Connection[Any]) -> None:
        """Keep ``conn`` as the spare when there is none, nobody is taking a connection,
        it is idle and it has not been the spare for SPARE_FOR already; else give it back
        to the pool."""
        if (
            not self._spare
            and not self._takers
            and conn.pgconn.transaction_status == _IDLE
            and not self.closed
        ):
            now = monotonic()
            if conn is not self._spare_now:
                self._spare_now, self._spare_until = conn, now + SPARE_FOR
            if now < self._spare_until:
                self._spare.append(conn)
                return
            self._spare_now = None
        super().putconn(conn)

    def close(self, timeout: float = 5.0) -> None:
        """Close the pool, the spare with it."""
        self._give_back()
        super().close(timeout)

    def drain(self) -> None:
        """Replace every connection, the spare too (psycopg_pool's ``drain``)."""
        self._give_back()
        super().drain()

    def get_stats(self) -> dict[str, int]:
        """The pool's statistics, the spare counted as available."""
        return self._with_spare(super().get_stats())

    def pop_stats(self) -> dict[str, int]:
        """As :meth:`get_stats`, and reset the counters."""
        return self._with_spare(super().pop_stats())

    def _with_spare(self, stats: dict[str, int]) -> dict[str, int]:
        if self._spare:
            stats["pool_available"] = stats.get("pool_available", 0) + len(self._spare)
        return stats

    def _give_back(self) -> None:
        while self._spare:
            try:
                conn = self._spare.pop()
            except IndexError:
                return
            self._spare_now = None
            super().putconn(conn)
