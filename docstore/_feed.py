"""The change feed's logic, free of I/O: where a feed stands, what it reads next, what it
hands out. The shells (store.py, aio.py) own the connection, LISTEN and the waiting.

A change's position is (xid, seq): the id of the transaction that wrote it and its place
in the sequence. A page only delivers rows whose xid is below its snapshot's frontier,
the oldest transaction still running in this database (its xmin, but for transactions
of other databases, which cannot write here): every transaction below it has ended, so
no row can still appear behind what was delivered. That makes (xid, seq) a cursor that neither
skips a transaction that took its id first and committed last, nor repeats anything.

A new feed starts at that same frontier, which prune_changes never passes, or at the
horizon prune_changes recorded if that is further: a fresh cursor is never behind
retention. A cursor past the snapshot's xmax was not given by this server (no cursor
it gives is, and its xmax only grows): it comes from another cluster, and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import _sql as q
from ._plan import Plan, Rows, Stmt
from ._sql import channel
from .change import Change, parse_cursor
from .errors import ChangesPruned, CursorAheadOfServer, DatabaseUnavailable
from .kinds import check_key

__all__ = ["Feed", "channel", "parse_cursor"]

PAGE = 500
"""Rows read per page: a feed catching up reads pages back to back."""

RETRY_LIMIT = 3
"""Failed reconnections in a row before the feed gives up (each waits for the pool)."""


def _start(rows: Rows) -> tuple[tuple[int, int], str]:
    """Where a feed starting now stands, from FEED_START's row: the frontier, or the
    horizon prune_changes recorded if that is further (everything up to it had
    committed before now, so nothing there is for this feed), and the snapshot whose
    committed transactions it leaves out."""
    ((frontier, snapshot, horizon),) = rows
    position = (int(frontier), 0)
    if isinstance(horizon, str):
        position = max(position, parse_cursor(horizon)[0])
    return position, str(snapshot)


class Feed:
    """The state of one ``store.changes()`` iteration."""

    def __init__(self, kinds: Sequence[str] | None, after: str | None, poll_interval: float) -> None:
        if isinstance(kinds, str):
            kinds = [kinds]
        for kind in kinds or ():
            check_key(kind)
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval!r}")
        self.kinds = sorted(set(kinds)) if kinds else None
        self.poll_interval = poll_interval
        # A feed started with after=None (or from change_cursor()) leaves out what had
        # committed by then: the rows visible in that snapshot, up to its xmax.
        self.position: tuple[int, int] | None = None
        self.since: str | None = None
        self.since_xmax = 0
        # The cursor as given, named if the server refuses it at the first page.
        self._given = after
        if after is not None:
            self.position, since = parse_cursor(after)
            self._skip(since)
        self.more = False
        self.pending = False
        self._pause = 0.0
        self.failures = 0

    def _skip(self, since: str | None) -> None:
        self.since = since
        self.since_xmax = 0 if since is None else int(since.split(":")[1])

    def _cursor(self, xid: int, seq: int) -> str:
        if self.since is not None and xid < self.since_xmax:
            return f"{xid}.{seq}@{self.since}"
        return f"{xid}.{seq}"

    @property
    def cursor(self) -> str | None:
        """Where the feed stands (the last change it read, or the frontier it passed)."""
        return None if self.position is None else self._cursor(*self.position)

    @staticmethod
    def frontier(sql: q.Statements) -> Plan[str]:
        """A cursor that delivers exactly the writes not committed now (see change_cursor)."""
        rows = yield Stmt(sql(q.FEED_START))
        (xid, seq), snapshot = _start(rows)
        return f"{xid}.{seq}@{snapshot}"

    def poll(self, sql: q.Statements) -> Plan[list[Change]]:
        """Read the next page: the changes deliverable now, in order."""
        if self.position is None:
            rows = yield Stmt(sql(q.FEED_START))
            self.position, snapshot = _start(rows)
            self._skip(snapshot)
        params = {
            "xid": str(self.position[0]),
            "seq": self.position[1],
            "kinds": self.kinds,
            "limit": PAGE,
            "since": self.since,
        }
        if self.since is not None and self.position[0] >= self.since_xmax:
            self._skip(None)
        skip = q.FEED_SKIP if self.since is not None else ""
        rows = yield Stmt(sql(q.FEED_PAGE, skip=skip), params)
        self.failures = 0
        return self.take(rows)

    def take(self, rows: Rows) -> list[Change]:
        """The deliverable changes of a page; moves the position past them."""
        xmin, xmax = int(rows[0][0]), int(rows[0][1])
        horizon = rows[0][2]
        assert self.position is not None
        if self.position[0] > xmax or self.since_xmax > xmax:
            # Every cursor this server gave is at or below its xmax, which only grows.
            raise CursorAheadOfServer(self._given or self._cursor(*self.position), xmax)
        self._given = None
        if isinstance(horizon, str) and self.position < parse_cursor(horizon)[0]:
            raise ChangesPruned(f"{self.position[0]}.{self.position[1]}", horizon)
        out: list[Change] = []
        self.pending = False
        for _frontier, _xmax, _horizon, xid_text, seq, kind, name, version, op, written_at in rows:
            if xid_text is None:
                break
            xid = int(xid_text)
            if xid >= xmin:
                # A transaction below this row may still commit a change before it.
                self.pending = True
                break
            self.position = (xid, seq)
            out.append(Change(kind, name, version, op, written_at, self._cursor(xid, seq)))
        self.more = len(rows) >= PAGE and not self.pending
        if not self.more and not self.pending and self.position < (xmin, 0):
            # Everything below the frontier is read (or filtered out): skip the rescan.
            self.position = (xmin, 0)
        return out

    def wait(self) -> float:
        """How long to wait for a notification before reading again.

        Rows waiting behind a running transaction are re-read soon, backing off: that
        transaction may end without writing a change, and then no notification comes.
        """
        if self.pending:
            self._pause = min(max(self._pause * 2, 0.005), 0.2)
            return self._pause
        self._pause = 0.0
        return self.poll_interval

    def lost(self, reason: str) -> None:
        """Count a lost connection; give up (DatabaseUnavailable) after too many in a row."""
        self.failures += 1
        if self.failures > RETRY_LIMIT:
            where = f"; resume with changes(after={self.cursor!r})" if self.cursor else ""
            first = reason.strip().splitlines()[0] if reason.strip() else "connection lost"
            raise DatabaseUnavailable(
                f"the change feed lost its connection {self.failures} times in a row ({first}){where}"
            )
