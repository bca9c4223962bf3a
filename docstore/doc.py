"""The values the store hands back: :class:`Doc` and :class:`Entry`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

__all__ = ["Doc", "Entry"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Doc(Generic[T]):
    """One version of a document, validated.

    For a snapshot kind ``data`` is the value; for a log kind's head it is the log's
    metadata and ``count`` is the number of live items. A tombstone (``deleted``) keeps
    the value that was deleted, so history shows what went.

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
class Entry(Generic[T]):
    """One item of a log kind with its version (its position ever) and write time."""

    version: int
    item: T
    written_at: datetime
    schema_version: int
