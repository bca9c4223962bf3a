"""Read replicas: which reads may go to the replica, and what the store remembers to decide.

A store with ``read_dsn=`` has a second pool on a streaming replica. Its reads go there,
except when they could miss the store's own writes: after each write the store keeps the
primary's WAL position (its LSN), and a read goes to the replica only once the replica has
replayed up to it; until then the read runs on the primary. A ``read_dsn`` naming several
hosts puts the pool's connections on whichever standby answers, so how far a replica has
replayed is remembered per server (its host and port), never carried over to another.
When the replica does not answer, reads run on the primary for ``RETRY_AFTER`` seconds
before the replica is tried again, and the outage is logged once (and its end once). All
state here is I/O-free; the sync and async stores run the statements.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ._connect import redact

__all__ = ["REPLAY_LSN", "RETRY_AFTER", "WRITE_LSN", "ReadRouting", "UsePrimary", "lsn_int", "server_of"]

log = logging.getLogger("docstore.replica")

RETRY_AFTER = 5.0
"""Seconds reads stay on the primary after the replica failed, before it is tried again."""

# The insert position, not pg_current_wal_lsn() (the write position): with
# synchronous_commit off the commit record may still sit in WAL buffers past the latter.
WRITE_LSN = "SELECT pg_current_wal_insert_lsn()::text"
# NULL on a server that is not in recovery: a promoted replica has everything it has.
REPLAY_LSN = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text "
    "ELSE pg_current_wal_lsn()::text END"
)


class UsePrimary(Exception):
    """Raised by a replica read that must run on the primary instead; ``reason`` says
    why (``behind``, ``unavailable``, ``no_schema``, ``replay_conflict``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def lsn_int(text: str | None) -> int:
    """A WAL position ``'16/B374D848'`` as a number (0 for NULL)."""
    if not text:
        return 0
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def server_of(conn: Any) -> str:
    """The server a connection is on, ``host:port`` (with several hosts in a DSN, the one
    libpq connected to). Read from the connection's own state: no round trip."""
    info = conn.info
    return f"{info.host}:{info.port}"


class ReadRouting:
    """A store's knowledge of its replica: how far it is known to have replayed, how far
    the store has written, and whether it is down."""

    def __init__(self, conninfo: str, where: str, timeout: float) -> None:
        self._conninfo = conninfo
        self.where = where
        self.timeout = timeout
        self._written = 0
        # Per server: a multi-host read_dsn moves the pool between standbys, and one
        # standby's replay position says nothing about another's.
        self._replayed: dict[str, int] = {}
        self._down_until = 0.0
        self._down = False
        self.unknown = False
        # Counts wrote_unknown() calls: a WAL position asked for before the latest one
        # cannot cover the write that may have committed after it was asked.
        self._unknowns = 0
        self._lock = threading.Lock()

    def usable(self) -> bool:
        """Whether to try the replica now (it is up, or its retry time has come)."""
        now = time.monotonic()
        if self.unknown:
            return False
        return not self._down or now >= self._down_until

    def unusable(self) -> str:
        """Why :meth:`usable` is False: ``outcome_unknown`` (a write may have committed
        unseen) or ``unavailable`` (the replica failed, and its retry time has not come)."""
        return "outcome_unknown" if self.unknown else "unavailable"

    def caught_up(self, server: str) -> bool:
        """Whether ``server`` is known to hold every write this store made."""
        return self._replayed.get(server, 0) >= self._written

    def writing(self) -> int:
        """A token to take before asking the primary for its WAL position, for ``wrote``."""
        return self._unknowns

    def wrote(self, lsn: str | None, since: int) -> None:
        """Record the primary's WAL position after one of this store's writes. ``since``:
        ``writing()``'s token from before the position was asked for. It clears the
        outcome-unknown mark only when no write went unknown since: another thread's
        position, asked for before that write committed, would not cover it."""
        value = lsn_int(lsn)
        with self._lock:
            self._written = max(self._written, value)
            if since == self._unknowns:
                self.unknown = False

    def wrote_unknown(self) -> None:
        """A write may have committed without its WAL position being known (the connection
        failed after it was sent, or a transaction block failed): read from the primary
        until a primary connection asked after this call has said how far its WAL reached
        (``wrote``), which covers that write if it committed."""
        with self._lock:
            self._unknowns += 1
            self.unknown = True

    def replayed(self, server: str, lsn: str | None) -> bool:
        """Record ``server``'s replay position; True when it holds this store's writes."""
        value = lsn_int(lsn)
        with self._lock:
            value = max(self._replayed.get(server, 0), value)
            self._replayed[server] = value
            return value >= self._written

    def failed(self, exc: BaseException) -> None:
        """The replica did not answer: reads go to the primary for a while (logged once)."""
        with self._lock:
            first = not self._down
            self._down = True
            self._down_until = time.monotonic() + RETRY_AFTER
            # A standby that restarts replays again from its last restart point: what it
            # said before the outage may be more than it shows after.
            self._replayed.clear()
        if first:
            text = str(exc).strip()
            reason = redact(text.splitlines()[0] if text else type(exc).__name__, self._conninfo)
            log.warning(
                "read replica %s unavailable (%s): reading from the primary until it answers again",
                self.where,
                reason,
            )

    def answered(self) -> None:
        """The replica served a read: end an outage (logged once)."""
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                log.warning("read replica %s answers again: reads go to it", self.where)
