"""The values the store hands back: :class:`Doc`, :class:`LogHead`, :class:`Items`,
:class:`Entry` and :class:`Imported`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = ["Doc", "Entry", "Imported", "Items", "LogHead"]

T = TypeVar("T")
M = TypeVar("M")


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(
        self,
        kind: str,
        name: str,
        version: int,
        data: T,
        schema_version: int,
        created_at: datetime,
        updated_at: datetime,
        deleted: bool = False,
        count: int | None = None,
        changed: bool | None = None,
    ) -> None:
        if type(self) is not Doc:
            # A subclass may add slots or a __dict__, which _Building's layout lacks.
            for setter, value in zip(
                _DOC_SLOTS,
                (kind, name, version, data, schema_version, created_at, updated_at, deleted, count, changed),
                strict=True,
            ):
                setter(self, value)
            return
        # A frozen dataclass stores each field through object.__setattr__, and even a
        # slot's own setter is a Python-level call; paid on every call that returns a
        # Doc. For the length of this method the instance is a _Building (the same
        # slots, stored as any class's attributes), then a Doc again.
        _set_class(self, _Building)
        doc: Any = self
        doc.kind = kind
        doc.name = name
        doc.version = version
        doc.data = data
        doc.schema_version = schema_version
        doc.created_at = created_at
        doc.updated_at = updated_at
        doc.deleted = deleted
        doc.count = count
        doc.changed = changed
        doc.__class__ = Doc


class _Building(Doc[Any]):
    """A Doc being built (Doc.__init__): object's own attribute stores, not the frozen
    dataclass's (both of them, or the type would keep dispatching stores to Python)."""

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__


_set_class: Callable[[Any, type], None] = object.__dict__["__class__"].__set__

# The slots' setters, in the order of Doc's fields (dataclasses.fields).
_DOC_SLOTS: tuple[Callable[[Any, Any], None], ...] = tuple(Doc.__dict__[f.name].__set__ for f in fields(Doc))


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


class Items(list[T]):
    """A log's items as ``read`` returns them: a list, oldest first, that also knows each
    item's version (its position in the log ever) and schema version, and, read with
    ``written_at=True``, its write time.

    It compares equal to a plain list of the same items; ``entries()`` gives each item
    with what it knows as an :class:`Entry`.
    """

    __slots__ = ("_schema_versions", "_versions", "_written_at")

    _versions: Sequence[int]
    _schema_versions: Sequence[int]
    _written_at: Sequence[datetime] | None

    def __init__(
        self,
        items: Iterable[T] = (),
        versions: Sequence[int] = (),
        schema_versions: Sequence[int] = (),
        written_at: Sequence[datetime] | None = None,
    ) -> None:
        super().__init__(items)
        self._versions = versions
        self._schema_versions = schema_versions
        self._written_at = written_at

    @property
    def versions(self) -> list[int]:
        """Each item's version, in the items' order."""
        return list(self._versions)

    @property
    def schema_versions(self) -> list[int]:
        """Each item's stored ``schema_version`` (older ones were upgraded on read)."""
        return list(self._schema_versions)

    @property
    def written_at(self) -> list[datetime]:
        """Each item's write time; a read without ``written_at=True`` raises ValueError
        (a time costs a parse, so a read fetches them only when asked)."""
        if self._written_at is None:
            raise ValueError("read(..., written_at=True) fetches the write times")
        return list(self._written_at)

    def entries(self) -> list[Entry[T]]:
        """Each item as an :class:`Entry` (needs ``read(..., written_at=True)``)."""
        return [
            Entry(version, item, at, sv)
            for version, item, at, sv in zip(
                self._versions, self, self.written_at, self._schema_versions, strict=True
            )
        ]


class Imported(NamedTuple):
    """What ``import_lines`` wrote: documents created and versions written."""

    documents: int
    versions: int
