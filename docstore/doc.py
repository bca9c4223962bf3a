"""The values the store hands back: :class:`Doc`, :class:`LogHead` and :class:`Entry`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

__all__ = ["Doc", "Entry", "LogHead"]

T = TypeVar("T")
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Doc(Generic[T]):
    """One version of a document, validated.

    For a snapshot kind ``data`` is the value. The store's untyped methods give a log
    kind's head as a Doc too, ``data`` its metadata and ``count`` its live items;
    ``store.log(kind)`` gives it as a :class:`LogHead`, whose ``meta`` says so. A
    tombstone (``deleted``) keeps the value that was deleted, so history shows what went.

    ``changed``, on the Doc a write returns (put, put_many, revert): True when the write
    stored this version, False when the value was already stored as given and nothing
    was written (for a retry with an idempotency key: what the first attempt did). None
    on a Doc that was read. Docs compare equal whatever it holds.
    """

    kind: str
    name: str
    version: int
    data: T
    schema_version: int
    created_at: datetime
    updated_at: datetime
    deleted: bool = False
    count: int | None = None
    changed: bool | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class LogHead(Generic[M]):
    """A log's head, as ``store.log(kind)`` hands it back: its version (the last item's),
    ``count`` live items and ``meta``, the log's metadata. ``deleted``: a tombstoned log
    (``restore`` brings it back)."""

    kind: str
    name: str
    version: int
    meta: M
    count: int
    created_at: datetime
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def of(cls, doc: Doc[M]) -> LogHead[M]:
        """The head the store's own methods give as a Doc (metadata in ``data``)."""
        return cls(
            doc.kind,
            doc.name,
            doc.version,
            doc.data,
            doc.count or 0,
            doc.created_at,
            doc.updated_at,
            doc.deleted,
        )


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """One item of a log kind with its version (its position ever) and write time."""

    version: int
    item: T
    written_at: datetime
    schema_version: int
