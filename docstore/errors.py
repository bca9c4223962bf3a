"""Errors raised by docstore, as one tree rooted at :class:`DocStoreError`.

::

    DocStoreError
    ├── UnknownKind            the kind was never registered on this store
    ├── KindMismatch           a snapshot operation on a log kind, or the reverse
    ├── InvalidKey             a kind or name the store cannot hold (empty, too long, ...)
    ├── InvalidFilter          a where= or order_by= the store cannot compile
    ├── DocumentNotFound       no such document, or no such version of it
    ├── VersionConflict        expected_version (or expected_count) did not match; nothing written
    ├── DocumentInvalid        a value failed validation, on write or on read
    ├── SchemaMissing          the store's tables are not there: run init_schema()
    │   └── DDLVersionMismatch the store's layout is another release's: upgrade the
    │                          store (`docstore migrate`) or docstore
    ├── PermissionDenied       the database role lacks a right the operation needs
    ├── ChangesPruned          a change feed's cursor is older than what prune_changes kept
    ├── InvalidCursor          not a change feed cursor: malformed, or a number out of range
    │   └── CursorAheadOfServer  a cursor past every transaction this server has issued
    │                          (from another cluster): reload, take a new cursor
    ├── IdempotencyKeyReused   an idempotency_key already names a different write
    ├── KeyedWriteLost         in store.transaction(), a write of the same idempotency_key
    │                          committed first: the transaction rolled back, run it again
    ├── Contention             the write kept racing with others past its retries
    ├── LimitExceeded          over a limit of PostgreSQL (or a version past 2**63-1):
    │                          running it again as it is would fail again
    ├── TransactionEnded       a write from a task of a store.transaction() block that
    │                          has ended: it was not run
    └── DatabaseUnavailable    the server could not be reached or the connection broke
        └── OutcomeUnknown     the connection broke after a write was sent: it may
                               or may not have been committed

Every error names the kind and name it concerns where there is one, and none of them
ever carries a password: DSNs are redacted before they reach a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ChangesPruned",
    "Contention",
    "CursorAheadOfServer",
    "DDLVersionMismatch",
    "DatabaseUnavailable",
    "DocStoreError",
    "DocumentInvalid",
    "DocumentNotFound",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "InvalidFilter",
    "InvalidKey",
    "KeyedWriteLost",
    "KindMismatch",
    "LimitExceeded",
    "OutcomeUnknown",
    "PermissionDenied",
    "SchemaMissing",
    "TransactionEnded",
    "UnknownKind",
    "VersionConflict",
]


class DocStoreError(Exception):
    """Base class of every error docstore raises."""


class UnknownKind(DocStoreError, KeyError):
    """The kind was not registered on this store."""

    def __init__(self, kind: str, known: Sequence[str] = ()) -> None:
        self.kind = kind
        hint = f"; registered kinds: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"kind {kind!r} is not registered: call store.register({kind!r}, Model){hint}")

    def __str__(self) -> str:
        # KeyError would quote the message; keep it readable.
        return str(self.args[0])


class KindMismatch(DocStoreError, TypeError):
    """A snapshot operation was asked of a log kind, or the reverse."""


class InvalidKey(DocStoreError, ValueError):
    """A kind or a name that the store cannot hold."""

    def __init__(self, kind: str, name: str | None, problem: str) -> None:
        self.kind = kind
        self.name = name
        self.problem = problem
        where = f"{_short(kind)} {_short(name)}" if name is not None else f"kind {_short(kind)}"
        super().__init__(f"{where}: {problem}")


class InvalidFilter(DocStoreError, ValueError):
    """A ``where=`` filter or an ``order_by=`` that cannot be compiled; nothing ran.

    ``operator`` is the offending operator (``"$gtt"``) or ``""``; ``path`` the dotted
    path it was found at (``""`` at the top level).
    """

    def __init__(self, message: str, operator: str = "", path: str = "") -> None:
        self.operator = operator
        self.path = path
        super().__init__(message)


class DocumentNotFound(DocStoreError, LookupError):
    """No document (or no such version of it) under this kind and name."""

    def __init__(self, kind: str, name: str, version: int | None = None, reason: str = "") -> None:
        self.kind = kind
        self.name = name
        self.version = version
        what = f"{kind} {name!r}" + (f" version {version}" if version is not None else "")
        super().__init__(f"{what} not found" + (f": {reason}" if reason else ""))


class VersionConflict(DocStoreError):
    """The document was not at the expected version; nothing was written.

    ``actual`` is the version found (0 when the document does not exist).
    """

    def __init__(self, kind: str, name: str, expected: int, actual: int, detail: str = "") -> None:
        self.kind = kind
        self.name = name
        self.expected = expected
        self.actual = actual
        want = "not to exist" if expected == 0 else f"to be at version {expected}"
        found = "it does not exist" if actual == 0 else f"it is at version {actual}"
        super().__init__(f"{kind} {name!r}: " + (detail or f"expected {want}, but {found}"))


class DocumentInvalid(DocStoreError, ValueError):
    """A value that does not validate against its kind's model.

    Raised on write (nothing is stored) and on read of stored data (``version`` says
    which). ``errors`` is Pydantic's list of error dicts, locations included.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        version: int | None,
        errors: Sequence[Any],
        context: str = "",
    ) -> None:
        self.kind = kind
        self.name = name
        self.version = version
        self.errors: list[dict[str, Any]] = [dict(e) for e in errors]
        at = f" version {version}" if version is not None else ""
        head = f"{kind} {name!r}{at} is invalid"
        if context:
            head += f" ({context})"
        lines = [_format_error(e) for e in self.errors[:10]]
        if len(self.errors) > 10:
            lines.append(f"... and {len(self.errors) - 10} more")
        super().__init__(head + ": " + "; ".join(lines))


class SchemaMissing(DocStoreError):
    """The store's schema or tables do not exist in this database."""


class DDLVersionMismatch(SchemaMissing):
    """The store's layout (the DDL version it records) is not the one this release
    writes, so nothing was written. An older store: upgrade it (``docstore migrate``, or
    ``init_schema()``). A newer one: install the docstore release the message names.

    A SchemaMissing too: the layout this release needs is not there, and code that
    answers SchemaMissing with ``init_schema()`` upgrades an older store that way.
    """

    def __init__(self, schema: str, store_version: int | None, release_version: int, message: str) -> None:
        self.schema = schema
        self.store_version = store_version
        self.release_version = release_version
        super().__init__(message)


class PermissionDenied(DocStoreError):
    """The database role may not do what the operation needs."""


class ChangesPruned(DocStoreError):
    """The change feed cannot resume at a cursor: changes after it were pruned.

    Nothing is skipped silently: reload the state you keep (``list``/``get``) and start a
    new feed with ``after=None``.
    """

    def __init__(self, cursor: str, horizon: str) -> None:
        self.cursor = cursor
        self.horizon = horizon
        super().__init__(
            f"the change feed fell behind retention: changes up to {horizon} were deleted by "
            f"prune_changes, and this feed is at {cursor}; reload the documents you follow "
            "and start again with changes(after=None)"
        )


class InvalidCursor(DocStoreError, ValueError):
    """Not a change feed cursor: malformed (``xid.seq``, or ``xid.seq@xmin:xmax:xip,...``
    in ASCII digits), or a number out of range; nothing was read.

    ``cursor`` is what was passed, ``problem`` what is wrong with it.
    """

    def __init__(self, cursor: object, problem: str, message: str = "") -> None:
        self.cursor = cursor
        self.problem = problem
        super().__init__(
            message
            or f"not a change feed cursor: {_shown(cursor)} ({problem}); pass the .cursor of a "
            "Change the feed gave (or change_cursor()'s), or None to start with the writes "
            "committed from now on"
        )


class CursorAheadOfServer(InvalidCursor):
    """A change feed cursor past every transaction this server has issued: it comes
    from another cluster (a store moved there by export and import, or a server
    restored to an earlier point). Resuming from it would deliver nothing until this
    server's transaction ids caught up, so it is refused.

    Reload the documents you follow, then take a new cursor on this server
    (``change_cursor()``, or ``changes(after=None)``). ``server_xmax`` is the next
    transaction id this server will issue.
    """

    def __init__(self, cursor: str, server_xmax: int) -> None:
        self.server_xmax = server_xmax
        problem = f"ahead of this server, whose next transaction id is {server_xmax}"
        super().__init__(
            cursor,
            problem,
            f"change feed cursor {_shown(cursor)} is {problem}: it comes from another "
            "cluster (a store moved by export and import, or a server restored to an "
            "earlier point), and this server has not issued it. Reload the documents you "
            "follow and take a new cursor here with change_cursor(), or start with "
            "changes(after=None)",
        )


class DatabaseUnavailable(DocStoreError):
    """The server could not be reached, or the connection broke mid-call.

    Raised as such, nothing of the call was kept (it never reached the server, or it was
    a read, or its transaction was rolled back): it is safe to retry once the server
    answers. A write whose outcome cannot be known raises :class:`OutcomeUnknown`.
    Either way nothing is half-written: each write is one statement or one transaction.
    """


class OutcomeUnknown(DatabaseUnavailable):
    """The connection broke after a write was sent: it may or may not have committed.

    Retry it with the same ``idempotency_key=``: if the first attempt committed, the
    retry returns what it wrote and writes nothing more. Without a key, re-read the
    document to see whether the write landed before writing again.
    """


class IdempotencyKeyReused(DocStoreError, ValueError):
    """An ``idempotency_key`` already names another write (other data, document or
    operation); nothing was written. A key stands for one write: use a new one."""

    def __init__(self, key: str, kind: str, name: str, prior: str) -> None:
        self.key = key
        self.kind = kind
        self.name = name
        super().__init__(
            f"{kind} {_short(name)}: idempotency_key {_short(key)} already names "
            f"a different write ({prior}); nothing was written. A key stands for "
            "one write: give each new write a new key"
        )


class KeyedWriteLost(DocStoreError):
    """Inside ``store.transaction()``, another write with the same ``idempotency_key``
    committed first, so the caller's transaction is rolled back (nothing of it was
    kept). Run the block again: the key then returns that write."""


class Contention(DocStoreError):
    """The write kept racing with other writers (or kept meeting deadlocks or
    serialization failures) through every retry; nothing was written. Try again later,
    or write the document from fewer places at once."""


class LimitExceeded(DocStoreError):
    """Over a limit of PostgreSQL (its class 54: too many columns, an array too large,
    statement too complex, ...), or a version past 2**63-1; nothing of the call was kept.
    Not a connection failure: run again as it is, it would meet the same limit."""


class TransactionEnded(DocStoreError):
    """A write from a task or context created inside a ``store.transaction()`` block
    that has ended (committed or rolled back): it cannot join that transaction and was
    not run. Await the task inside the block, or create it outside."""


def _format_error(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(value)"
    return f"{loc}: {err.get('msg', 'invalid')}"


def _shown(value: object) -> str:
    return _short(value) if isinstance(value, str) else repr(value)[:80]


def _short(text: str, limit: int = 80) -> str:
    """Quote a user string for a message, cut so a 10 MB name cannot flood a log."""
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)
