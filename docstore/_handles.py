# Generated from docstore/_handles_async.py by .ci/async_to_sync.py: do not edit.
# Change docstore/_handles_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""Handles bound to one kind: ``store.documents(kind)`` and ``store.log(kind)``.

A snapshot kind and a log kind are used through different verbs, as Marten splits
documents from event streams: a handle offers only its mode's, typed by the kind's
handle (``Documents[T]``, ``Log[T, M]``), so a call the mode does not have is a type
error rather than a KindMismatch at run time. Each method is the store's method of the
same name with the kind filled in.

docstore/_handles.py is generated from this module by .ci/async_to_sync.py: edit this one.
"""

from __future__ import annotations

import builtins
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from pydantic import TypeAdapter

from ._plan import OnInvalid
from .doc import Doc, Entry, Items, LogHead
from .kinds import KindRef

if TYPE_CHECKING:
    from .store import DocStore

__all__ = ["Documents", "Log"]

T = TypeVar("T")
M = TypeVar("M")
X = TypeVar("X")


class _Bound:
    """What both handles share: the store, the kind, and the verbs of either mode."""

    def __init__(self, store: DocStore, kind: KindRef) -> None:
        self._store = store
        self._kind = kind

    @property
    def kind(self) -> str:
        """The kind's name."""
        return self._kind if isinstance(self._kind, str) else self._kind.name

    @property
    def store(self) -> DocStore:
        """The store this handle writes to."""
        return self._store

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind!r} of {self._store!r}>"

    def count(self, *, where: Any = None) -> int:
        """How many current, undeleted documents match ``where``."""
        return self._store.count(self._kind, where=where)

    def delete(
        self,
        name: str,
        *,
        expected_version: int | None = None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Delete ``name`` (a tombstone :meth:`restore` undoes); returns its version."""
        return self._store.delete(
            self._kind,
            name,
            expected_version=expected_version,
            author=author,
            idempotency_key=idempotency_key,
        )

    def restore(self, name: str, *, expected_version: int | None = None, author: str | None = None) -> int:
        """Undo a delete; returns the document's version after it."""
        return self._store.restore(self._kind, name, expected_version=expected_version, author=author)

    def purge(self, names: str | Sequence[str]) -> builtins.list[str]:
        """Remove the named documents and all their versions for good; returns those
        that were live."""
        return self._store.purge(self._kind, names)

    def prune_documents(
        self,
        *,
        older_than: timedelta | datetime | None = None,
        keep_last: int | None = None,
        batch_size: int = 500,
        progress: Callable[[int], None] | None = None,
        restorable: bool = False,
    ) -> int:
        """Remove whole documents last written before ``older_than`` and/or beyond the
        ``keep_last`` most recent; returns how many went (``restorable``: logs only)."""
        return self._store.prune_documents(
            self._kind,
            older_than=older_than,
            keep_last=keep_last,
            batch_size=batch_size,
            progress=progress,
            restorable=restorable,
        )

    def prune_versions(
        self, *, keep_last: int, batch_size: int = 5000, progress: Callable[[int], None] | None = None
    ) -> int:
        """Drop versions beyond each document's newest ``keep_last``; returns how many."""
        return self._store.prune_versions(
            self._kind, keep_last=keep_last, batch_size=batch_size, progress=progress
        )


class Documents(_Bound, Generic[T]):
    """A snapshot kind's documents, each write a whole new version: ``store.documents(kind)``."""

    def get(self, name: str, *, version: int | None = None) -> Doc[T]:
        """The current document, or version ``version`` of it; else DocumentNotFound."""
        return self._store.get(self._kind, name, version=version)

    def get_many(self, names: Sequence[str]) -> dict[str, Doc[T]]:
        """Current documents by name, in one query; missing names are left out."""
        return self._store.get_many(self._kind, names)

    def put(
        self,
        name: str,
        value: T | Any,
        *,
        expected_version: int | None = None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> Doc[T]:
        """Validate and store ``value`` as the next version (see ``DocStore.put``)."""
        return self._store.put(
            self._kind,
            name,
            value,
            expected_version=expected_version,
            author=author,
            idempotency_key=idempotency_key,
        )

    def put_many(self, values: Mapping[str, Any], *, author: str | None = None) -> builtins.list[Doc[T]]:
        """Store many documents atomically; returns them in input order."""
        return self._store.put_many(self._kind, values, author=author)

    def versions(self, name: str) -> builtins.list[Doc[T]]:
        """Every stored version, oldest first, tombstones included."""
        return self._store.versions(self._kind, name)

    def revert(
        self, name: str, to_version: int, *, expected_version: int | None = None, author: str | None = None
    ) -> Doc[T]:
        """Write the value of ``to_version`` as a new version."""
        return self._store.revert(
            self._kind, name, to_version, expected_version=expected_version, author=author
        )

    def list(
        self,
        *,
        where: Any = None,
        limit: int | None = None,
        after: str | Doc[Any] | tuple[Any, str] | None = None,
        on_invalid: OnInvalid = "raise",
        order_by: str = "name",
    ) -> builtins.list[Doc[T]]:
        """Current documents matching ``where``, in ``order_by`` order (see ``DocStore.list``)."""
        return self._store.list(
            self._kind, where=where, limit=limit, after=after, on_invalid=on_invalid, order_by=order_by
        )

    def iter(
        self,
        *,
        where: Any = None,
        batch_size: int = 1000,
        on_invalid: OnInvalid = "raise",
        order_by: str = "name",
    ) -> Iterator[Doc[T]]:
        """Stream current documents, ``batch_size`` rows in memory at most."""
        for doc in self._store.iter(
            self._kind, where=where, batch_size=batch_size, on_invalid=on_invalid, order_by=order_by
        ):
            yield doc

    def upgrade(self, *, batch_size: int = 500, progress: Callable[[int], None] | None = None) -> int:
        """Rewrite documents of an older schema_version as new versions; returns how many."""
        return self._store.upgrade(self._kind, batch_size=batch_size, progress=progress)


class Log(_Bound, Generic[T, M]):
    """A log kind's logs, items appended one version each: ``store.log(kind)``."""

    def append(
        self,
        name: str,
        items: Iterable[T | Any],
        *,
        expected_version: int | None = None,
        expected_count: int | None = None,
        meta: M | Any = None,
        meta_update: Mapping[str, Any] | None = None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Append items in one statement; returns the log's new version (see ``DocStore.append``)."""
        return self._store.append(
            self._kind,
            name,
            items,
            expected_version=expected_version,
            expected_count=expected_count,
            meta=meta,
            meta_update=meta_update,
            author=author,
            idempotency_key=idempotency_key,
        )

    def rewrite(
        self,
        name: str,
        items: Iterable[T | Any],
        *,
        expected_version: int | None = None,
        expected_count: int | None = None,
        meta: M | Any = None,
        meta_update: Mapping[str, Any] | None = None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Replace the live items; the old ones stay readable by version until pruned."""
        return self._store.rewrite(
            self._kind,
            name,
            items,
            expected_version=expected_version,
            expected_count=expected_count,
            meta=meta,
            meta_update=meta_update,
            author=author,
            idempotency_key=idempotency_key,
        )

    def clear(self, name: str, *, expected_version: int | None = None) -> int:
        """Leave the log with no live items; returns its version."""
        return self._store.clear(self._kind, name, expected_version=expected_version)

    @overload
    def read(
        self,
        name: str,
        *,
        last: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        where: Any = None,
        into: None = None,
        written_at: bool = False,
    ) -> Items[T]: ...

    @overload
    def read(
        self,
        name: str,
        *,
        last: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        where: Any = None,
        into: TypeAdapter[X],
        written_at: bool = False,
    ) -> Items[X]: ...

    def read(
        self,
        name: str,
        *,
        last: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        where: Any = None,
        into: TypeAdapter[Any] | None = None,
        written_at: bool = False,
    ) -> Items[Any]:
        """Live items, oldest first: the ``last`` N, or ``limit`` of those after ``after``,
        as :class:`Items` (a list that knows their versions; ``written_at=True`` fetches
        their write times too). ``into``: validate each item's stored JSON with this
        adapter instead of the kind's, to get another type straight from it, such as
        plain dicts (see the store's read).
        """
        return self._store.read(
            self._kind,
            name,
            last=last,
            after=after,
            limit=limit,
            where=where,
            into=into,
            written_at=written_at,
        )

    def entries(
        self,
        name: str,
        *,
        last: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        where: Any = None,
    ) -> builtins.list[Entry[T]]:
        """Deprecated: ``(await read(name, ..., written_at=True)).entries()``."""
        warnings.warn(
            "entries() is deprecated: use read(..., written_at=True).entries()", DeprecationWarning, 2
        )
        items = self.read(name, last=last, after=after, limit=limit, where=where, written_at=True)
        return items.entries()

    def head(self, name: str) -> LogHead[M]:
        """The log's head: its version, live ``count`` and metadata (``meta``)."""
        return LogHead.of(self._store.get(self._kind, name))

    def heads(self, names: Sequence[str]) -> dict[str, LogHead[M]]:
        """The heads of the named logs, in one query; missing names are left out."""
        found = self._store.get_many(self._kind, names)
        return {name: LogHead.of(doc) for name, doc in found.items()}

    def list(
        self,
        *,
        where: Any = None,
        limit: int | None = None,
        after: str | LogHead[Any] | tuple[Any, str] | None = None,
        on_invalid: OnInvalid = "raise",
        order_by: str = "name",
    ) -> builtins.list[LogHead[M]]:
        """The heads of the live logs whose metadata matches ``where``. ``after`` pages
        by keyset: the last name, or the previous page's last head or ``(sort key, name)``."""
        found = self._store.list(
            self._kind, where=where, limit=limit, after=after, on_invalid=on_invalid, order_by=order_by
        )
        return [LogHead.of(doc) for doc in found]

    def iter(
        self,
        *,
        where: Any = None,
        batch_size: int = 1000,
        on_invalid: OnInvalid = "raise",
        order_by: str = "name",
    ) -> Iterator[LogHead[M]]:
        """Stream the live logs' heads, ``batch_size`` rows in memory at most."""
        for doc in self._store.iter(
            self._kind, where=where, batch_size=batch_size, on_invalid=on_invalid, order_by=order_by
        ):
            yield LogHead.of(doc)
