"""What the change feed hands out (:class:`Change`), its cursors, and the channel it
listens on: for programs and layers that follow a store's writes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from . import _sql
from .errors import InvalidCursor

__all__ = ["Change", "channel", "check_cursor"]


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write, as ``store.changes()`` delivers it.

    ``version`` is the document's version after the write (a ``clear`` leaves it as it
    was; a ``purge`` or ``prune`` gives the version the document had). ``op`` is the
    call that wrote it: put, revert, delete, append, rewrite, clear, restore, purge,
    prune, import (a store written by release 0.1 holds ``prune`` for a purge too).
    ``cursor`` is opaque: pass the last one you handled as ``changes(after=...)`` to
    resume exactly after it.
    """

    kind: str
    name: str
    version: int
    op: str
    written_at: datetime
    cursor: str


def channel(schema: str) -> str:
    """The PostgreSQL NOTIFY channel the store in ``schema`` signals each commit on.

    A feed LISTENs on it; ``SELECT pg_notify(channel, '')`` wakes every feed of that
    store, which then reads what is new (the notification carries nothing).
    """
    return _sql.channel(schema)


def check_cursor(cursor: str) -> None:
    """Refuse, with :class:`~docstore.InvalidCursor` naming it, anything that is not a
    cursor the feed gives (``Change.cursor``): before a program passes it on."""
    parse_cursor(cursor)


_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes '²' and '٣'

NUMBER_MAX = 2**63 - 1
"""The largest number a cursor holds: a seq is a bigint, and no server issues
transaction ids past it (their epoch would have to wrap 2^31 times)."""


def _number(cursor: str, text: str, what: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise InvalidCursor(cursor, f"its {what} {text!r} is not a number in ASCII digits")
    # The length first: int() of thousands of digits is slow, and refused in its own words.
    if len(text) > 19 or int(text) > NUMBER_MAX:
        raise InvalidCursor(cursor, f"its {what} {text[:30]!r} is out of range (at most {NUMBER_MAX})")
    return int(text)


def parse_cursor(cursor: str) -> tuple[tuple[int, int], str | None]:
    """A cursor's (xid, seq) and the snapshot it skips, if any; InvalidCursor naming it
    when it is not one the feed gives. The one parser of cursors: nothing malformed
    reaches the server.

    A cursor is ``xid.seq``, or ``xid.seq@snapshot`` while the transactions of a start
    snapshot (``xmin:xmax:xip,...``, as pg_current_snapshot() prints it) are still being
    passed: those that had committed in it are "before" and never delivered, so a
    consumer resuming from such a cursor must still skip them.
    """
    if not isinstance(cursor, str):
        raise InvalidCursor(cursor, f"a {type(cursor).__name__}, not a string")
    position, at, snapshot = cursor.partition("@")
    xid_text, dot, seq_text = position.partition(".")
    if not dot:
        raise InvalidCursor(cursor, "not of the form XID.SEQ or XID.SEQ@SNAPSHOT")
    xid = _number(cursor, xid_text, "transaction id")
    seq = _number(cursor, seq_text, "sequence number")
    if not at:
        return (xid, seq), None
    parts = snapshot.split(":")
    if len(parts) != 3:
        raise InvalidCursor(cursor, f"its snapshot {snapshot[:60]!r} is not XMIN:XMAX:XIP,...")
    xmin = _number(cursor, parts[0], "snapshot's xmin")
    xmax = _number(cursor, parts[1], "snapshot's xmax")
    # The server's own checks of a pg_snapshot, so that none of its errors leaks out.
    if xmin % 2**32 == 0 or xmax % 2**32 == 0:
        raise InvalidCursor(cursor, "its snapshot names transaction id 0, which no server issues")
    if xmin > xmax:
        raise InvalidCursor(cursor, f"its snapshot's xmin {xmin} is past its xmax {xmax}")
    running = (
        [_number(cursor, x, "snapshot's running transaction") for x in parts[2].split(",")]
        if parts[2]
        else []
    )
    if running != sorted(set(running)) or not all(xmin <= x < xmax for x in running):
        raise InvalidCursor(
            cursor, "its snapshot's running transactions are not in increasing order within [xmin, xmax)"
        )
    return (xid, seq), snapshot
