"""The rows plans receive, named: the drivers hand plans plain tuples (as psycopg returns
them, and as tests feed canned ones); a plan names a row with ``Head._make(row)``."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

__all__ = ["HEAD_COLUMNS", "HEAD_TEXT", "Head", "NamedHead", "Prior"]


class Head(NamedTuple):
    """A document's head as ``GET_HEAD`` reads it (docstore._sql's ``HEAD_COLUMNS``)."""

    version: int
    schema_version: int
    data: str  # read as text: psycopg gives a str, which validate_json takes as it is
    created_at: datetime
    updated_at: datetime
    deleted: bool
    mode: str  # 's' snapshot, 'l' log
    live_from: int  # a log's first live item (kept by a delete, for restore())

    @property
    def live_count(self) -> int:
        """A log's live items: none once deleted."""
        return 0 if self.deleted else self.version - self.live_from + 1


class NamedHead(NamedTuple):
    """A head with its name first, as the statements that read many heads return it."""

    name: str
    version: int
    schema_version: int
    data: str
    created_at: datetime
    updated_at: datetime
    deleted: bool
    mode: str
    live_from: int

    @property
    def live_count(self) -> int:
        """A log's live items: none once deleted."""
        return 0 if self.deleted else self.version - self.live_from + 1


class Prior(NamedTuple):
    """What the write that holds an idempotency key returned."""

    version: int
    created_at: datetime
    written_at: datetime
    wrote: bool  # False: the keyed write found its value already stored and wrote nothing


# The columns of a head, in Head's order; data as text (see Head.data).
HEAD_COLUMNS = ", ".join("data::text" if f == "data" else f for f in Head._fields)
# The column of a head that holds a document (docstore._plan.Stmt's texts).
HEAD_TEXT = (Head._fields.index("data"),)
