"""The value the change feed hands out: :class:`Change`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Change"]


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
