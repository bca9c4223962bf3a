"""The store's logic, free of I/O, shared by :class:`DocStore` and :class:`AsyncDocStore`.

Each operation is a *plan*: a generator that yields :class:`Stmt` objects and receives
their result rows, then returns the operation's value. The sync store drives a plan with
``conn.execute``, the async store with ``await conn.execute``; neither holds any logic of
its own, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

import orjson
import psycopg
from psycopg import errors as pge
from pydantic import ValidationError

from . import _sql as q
from ._codec import JsonProblem, RawJson, dump
from ._filters import Order, compile_where, parse_order
from .doc import Doc, Entry
from .errors import (
    DatabaseUnavailable,
    DocStoreError,
    DocumentInvalid,
    DocumentNotFound,
    InvalidKey,
    KindMismatch,
    PermissionDenied,
    SchemaMissing,
    VersionConflict,
)
from .kinds import ANY_DICT, Kind, Registry, check_key

T = TypeVar("T")
Row = tuple[Any, ...]
Rows = list[Row]
Plan = Generator["Stmt", Rows, T]

DDL_VERSION = 1
"""The DDL version this release's schema.sql records (its last statement)."""

OnInvalid = Literal["raise", "skip"]


@dataclass(frozen=True, slots=True)
class Stmt:
    """One statement to run, with its parameters."""

    query: str
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    """A plan with what the driver must know to run it.

    ``atomic``: several writes that must commit together (the driver opens a transaction).
    ``read_only``: safe to run again on a fresh connection when the first one was dead.
    """

    plan: Callable[[], Plan[T]]
    kind: str = ""
    name: str | None = None
    atomic: bool = False
    read_only: bool = False


def _check_expected(expected: int | None) -> None:
    if expected is not None and (not isinstance(expected, int) or expected < 0):
        raise ValueError(f"expected_version must be None, 0 or a positive int, not {expected!r}")


class Core:
    """Plans for every store operation, bound to a registry and a schema."""

    def __init__(self, registry: Registry, schema: str, author: str | None = None) -> None:
        self.kinds = registry
        self.sql = q.Statements(schema)
        self.author = author
        self._meta_defaults: dict[str, bytes | None] = {}

    # --- encoding ----------------------------------------------------------------------

    def encode(self, spec: Kind, name: str, value: Any, index: int | None = None) -> tuple[Any, bytes]:
        """Validate ``value`` against the kind, then dump it to JSON bytes once."""
        where = f"item {index}" if index is not None else "write"
        try:
            validated = spec.adapter.validate_python(value)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if index is not None:
                errors = [{**e, "loc": (index, *e["loc"])} for e in errors]
            raise DocumentInvalid(spec.name, name, None, errors, where) from None
        data = dump(spec.adapter, validated)
        if isinstance(data, JsonProblem):
            err = data.as_error()
            if index is not None:
                err["loc"] = (index, *err["loc"])
            raise DocumentInvalid(spec.name, name, None, [err], where)
        return validated, data

    def encode_meta(self, spec: Kind, name: str, meta: Any) -> bytes:
        """Validate and dump a log's metadata."""
        adapter = spec.meta or ANY_DICT
        try:
            validated = adapter.validate_python(meta)
        except ValidationError as exc:
            raise DocumentInvalid(spec.name, name, None, exc.errors(include_url=False),
                                  "meta") from None
        data = dump(adapter, validated)
        if isinstance(data, JsonProblem):
            raise DocumentInvalid(spec.name, name, None, [data.as_error()], "meta")
        return data

    def meta_default(self, spec: Kind) -> bytes | None:
        """The metadata a new log gets when none is given; None when its type needs some."""
        if spec.name not in self._meta_defaults:
            try:
                self._meta_defaults[spec.name] = self.encode_meta(spec, "", {})
            except DocumentInvalid:
                self._meta_defaults[spec.name] = None
        return self._meta_defaults[spec.name]

    # --- rows -> values ----------------------------------------------------------------

    def head_doc(self, spec: Kind, name: str, row: Row) -> Doc[Any]:
        """A head row (``_HEAD_COLS``) as a Doc."""
        version, sv, data, created, updated, deleted, mode, live_from = row
        if mode == "l":
            return Doc(spec.name, name, version, spec.parse_meta(name, data), sv, created,
                       updated, deleted, version - live_from + 1)
        return Doc(spec.name, name, version, spec.parse(name, version, data, sv), sv, created,
                   updated, deleted)

    def mode_of(self, spec: Kind, name: str, mode: str) -> None:
        """Refuse a stored document whose mode disagrees with its kind's registration."""
        stored = "log" if mode == "l" else "snapshot"
        if stored != spec.mode:
            raise KindMismatch(f"{spec.name} {name!r} is stored as a {stored} document, but "
                               f"kind {spec.name!r} is registered as {spec.mode}")

    # --- snapshot kinds ----------------------------------------------------------------

    def put(self, kind: str, name: str, value: Any, expected: int | None,
            op: str = "put", author: str | None = None) -> Op[Doc[Any]]:
        """Write ``value`` as the next version, unless it equals the current one."""
        spec = self.kinds.get(kind, "snapshot")
        check_key(kind, name)
        _check_expected(expected)
        validated, data = self.encode(spec, name, value)
        return Op(lambda: self._put_plan(spec, name, validated, data, expected, op, author),
                  kind, name)

    def _put_plan(self, spec: Kind, name: str, validated: Any, data: bytes,
                  expected: int | None, op: str, author: str | None) -> Plan[Doc[Any]]:
        params = {"kind": spec.name, "name": name, "sv": spec.schema_version,
                  "data": RawJson(data), "expected": expected, "op": op,
                  "author": author or self.author}
        if expected is None:
            query = self.sql(q.PUT_UPSERT, expect="")
        elif expected == 0:
            query = self.sql(q.PUT_UPSERT, expect="AND d.deleted")
        else:
            query = self.sql(q.PUT_UPDATE)
        for _attempt in range(3):
            rows = yield Stmt(query, params)
            if rows:
                version, created, updated = rows[0]
                return Doc(spec.name, name, version, validated, spec.schema_version, created,
                           updated)
            # Nothing written: a conflict, a mode clash, or a value equal to the current one.
            heads = yield Stmt(self.sql(q.GET_HEAD), params)
            if not heads:
                if expected is None or expected == 0:
                    continue  # deleted under our feet: write again
                raise VersionConflict(spec.name, name, expected, 0)
            version, sv, stored, created, updated, deleted, mode, _ = heads[0]
            self.mode_of(spec, name, mode)
            actual = version
            if expected == 0 or (expected is not None and expected != version):
                raise VersionConflict(spec.name, name, expected, actual)
            if not deleted and sv == spec.schema_version and orjson.loads(stored) == orjson.loads(data):
                return Doc(spec.name, name, version, validated, sv, created, updated)
            if expected is not None:
                raise VersionConflict(spec.name, name, expected, actual)
        raise DocStoreError(f"{spec.name} {name!r}: the write kept racing with other writers")

    def get(self, kind: str, name: str, version: int | None) -> Op[Doc[Any]]:
        """The current document (or one version of it)."""
        spec = self.kinds.get(kind)
        check_key(kind, name)
        if version is not None and spec.mode == "log":
            raise KindMismatch(f"kind {kind!r} is a log kind: read items with entries(after=...)")
        return Op(lambda: self._get_plan(spec, name, version), kind, name, read_only=True)

    def _get_plan(self, spec: Kind, name: str, version: int | None) -> Plan[Doc[Any]]:
        params = {"kind": spec.name, "name": name, "version": version}
        if version is None:
            rows = yield Stmt(self.sql(q.GET_HEAD), params)
            if not rows or rows[0][5]:
                raise DocumentNotFound(spec.name, name, reason="deleted" if rows else "")
            self.mode_of(spec, name, rows[0][6])
            return self.head_doc(spec, name, rows[0])
        rows = yield Stmt(self.sql(q.GET_VERSION), params)
        if not rows:
            raise DocumentNotFound(spec.name, name, version)
        v, sv, data, created, written, tomb, mode = rows[0]
        self.mode_of(spec, name, mode)
        return Doc(spec.name, name, v, spec.parse(name, v, data, sv), sv, created, written, tomb)

    def get_many(self, kind: str, names: Sequence[str]) -> Op[dict[str, Doc[Any]]]:
        """Current documents by name; missing or deleted names are left out."""
        spec = self.kinds.get(kind)
        names = list(names)
        for name in names:
            check_key(kind, name)

        def plan() -> Plan[dict[str, Doc[Any]]]:
            rows = yield Stmt(self.sql(q.GET_HEADS), {"kind": kind, "names": names})
            found = {row[0]: self.head_doc(spec, row[0], row[1:]) for row in rows}
            return {n: found[n] for n in names if n in found}

        return Op(plan, kind, read_only=True)

    def versions(self, kind: str, name: str) -> Op[list[Doc[Any]]]:
        """Every stored version, oldest first (tombstones included)."""
        spec = self.kinds.get(kind, "snapshot")
        check_key(kind, name)

        def plan() -> Plan[list[Doc[Any]]]:
            rows = yield Stmt(self.sql(q.LIST_VERSIONS), {"kind": kind, "name": name})
            if not rows:
                raise DocumentNotFound(kind, name)
            return [Doc(kind, name, v, spec.parse(name, v, data, sv), sv, created, written, tomb)
                    for v, sv, data, created, written, tomb in rows]

        return Op(plan, kind, name, read_only=True)

    def delete(self, kind: str, name: str, expected: int | None,
               author: str | None = None) -> Op[int]:
        """Mark the document deleted (a tombstone version for snapshot kinds)."""
        spec = self.kinds.get(kind)
        check_key(kind, name)
        _check_expected(expected)
        params = {"kind": kind, "name": name, "expected": expected, "op": "delete",
                  "author": author or self.author}
        query = self.sql(q.DELETE_SNAPSHOT if spec.mode == "snapshot" else q.DELETE_LOG)

        def plan() -> Plan[int]:
            rows = yield Stmt(query, params)
            if rows:
                return int(rows[0][0])
            raise (yield from self._unwritten(spec, name, expected))

        return Op(plan, kind, name)

    def _unwritten(self, spec: Kind, name: str, expected: int | None) -> Plan[DocStoreError]:
        """Why a write that needed an existing, live document wrote nothing."""
        heads = yield Stmt(self.sql(q.GET_HEAD), {"kind": spec.name, "name": name})
        if not heads:
            return (VersionConflict(spec.name, name, expected, 0) if expected
                    else DocumentNotFound(spec.name, name))
        version, *_, deleted, mode, _live = heads[0]
        self.mode_of(spec, name, mode)
        if deleted:
            return (VersionConflict(spec.name, name, expected, version) if expected
                    else DocumentNotFound(spec.name, name, reason="deleted"))
        return VersionConflict(spec.name, name, expected or 0, version)

    def revert(self, kind: str, name: str, to_version: int, expected: int | None,
               author: str | None = None) -> Op[Doc[Any]]:
        """Write version ``to_version``'s value as a new version."""
        spec = self.kinds.get(kind, "snapshot")
        check_key(kind, name)
        _check_expected(expected)

        def plan() -> Plan[Doc[Any]]:
            old = yield from self._get_plan(spec, name, to_version)
            validated, data = self.encode(spec, name, old.data)
            return (yield from self._put_plan(spec, name, validated, data, expected, "revert",
                                              author))

        return Op(plan, kind, name, atomic=True)

    def put_many(self, kind: str, values: Mapping[str, Any],
                 author: str | None = None) -> Op[list[Doc[Any]]]:
        """Write many documents in one statement; unchanged ones write nothing."""
        spec = self.kinds.get(kind, "snapshot")
        names: list[str] = []
        datas: list[RawJson] = []
        validated: dict[str, Any] = {}
        for name, value in values.items():
            check_key(kind, name)
            validated[name], data = self.encode(spec, name, value)
            names.append(name)
            datas.append(RawJson(data))

        def plan() -> Plan[list[Doc[Any]]]:
            if not names:
                return []
            rows = yield Stmt(self.sql(q.PUT_MANY), {
                "kind": kind, "names": names, "datas": datas, "sv": spec.schema_version,
                "author": author or self.author})
            written = {r[0]: r[1:] for r in rows}
            if len(written) < len(names):
                missing = [n for n in names if n not in written]
                heads = yield Stmt(self.sql(q.GET_HEADS), {"kind": kind, "names": missing})
                for name, version, _sv, _d, created, updated, _del, mode, _l in heads:
                    self.mode_of(spec, name, mode)
                    written[name] = (version, created, updated)
            return [Doc(kind, n, written[n][0], validated[n], spec.schema_version,
                        written[n][1], written[n][2]) for n in names]

        return Op(plan, kind)

    def list_docs(self, kind: str, where: Any, limit: int | None, after: Any,
                  on_invalid: OnInvalid = "raise",
                  order_by: str | None = "name") -> Op[list[Doc[Any]]]:
        """Current, undeleted documents in ``order_by`` order, filtered by ``where``.

        ``after`` is a keyset cursor: a name (name order), the previous page's last Doc,
        or a ``(sort key, name)`` pair (docstore._filters.Order.cursor).
        """
        spec = self.kinds.get(kind)
        order = parse_order(order_by)
        adapter = (spec.meta or ANY_DICT) if spec.mode == "log" else spec.adapter
        stmt = self._list_stmt(kind, where, order, order.cursor(after, adapter), limit)

        def plan() -> Plan[list[Doc[Any]]]:
            rows = yield stmt
            return self.docs_from_rows(spec, rows, on_invalid)

        return Op(plan, kind, read_only=True)

    def _list_stmt(self, kind: str, where: Any, order: Order, cursor: tuple[Any, str] | None,
                   limit: int | None) -> Stmt:
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or a non-negative int, not {limit!r}")
        fragment, params = compile_where(where, "data")
        params.update(order.params(cursor), kind=kind, limit=limit)
        return Stmt(self.sql(q.LIST_HEADS, where=fragment, after=order.after_sql(cursor is not None),
                             order=order.order_sql()), params)

    def docs_from_rows(self, spec: Kind, rows: Rows, on_invalid: OnInvalid) -> list[Doc[Any]]:
        """Head rows (name first) as Docs, skipping invalid ones when asked to."""
        docs = []
        for row in rows:
            try:
                docs.append(self.head_doc(spec, row[0], row[1:]))
            except DocumentInvalid:
                if on_invalid == "raise":
                    raise
        return docs

    def iter_batch(self, kind: str, where: Any, after: Any, batch: int,
                   order_by: str | None = "name") -> Stmt:
        """One page of an ``iter``: keyset pagination after ``after`` (see list_docs)."""
        spec = self.kinds.get(kind)
        order = parse_order(order_by)
        adapter = (spec.meta or ANY_DICT) if spec.mode == "log" else spec.adapter
        return self._list_stmt(kind, where, order, order.cursor(after, adapter), batch)

    @staticmethod
    def iter_after(row: Row, order_by: str | None = "name") -> tuple[Any, str]:
        """The cursor that follows a page whose last head row is ``row``."""
        return parse_order(order_by).row_cursor(row)

    def upgrade(self, kind: str, batch_size: int,
                progress: Callable[[int], None] | None) -> Op[int]:
        """Rewrite documents stored at an older schema_version as new versions."""
        spec = self.kinds.get(kind, "snapshot")

        def plan() -> Plan[int]:
            done, after = 0, ""
            while True:
                rows = yield Stmt(self.sql(q.STALE_NAMES), {
                    "kind": kind, "sv": spec.schema_version, "after": after, "limit": batch_size})
                if not rows:
                    return done
                for (name,) in rows:
                    current = yield from self._get_plan(spec, name, None)
                    validated, data = self.encode(spec, name, current.data)
                    yield from self._put_plan(spec, name, validated, data, current.version,
                                              "put", "docstore upgrade")
                    done += 1
                after = rows[-1][0]
                if progress is not None:
                    progress(done)

        return Op(plan, kind)

    # --- log kinds ---------------------------------------------------------------------

    def append(self, kind: str, name: str, items: Iterable[Any], expected: int | None,
               meta: Any, rewrite: bool = False, author: str | None = None) -> Op[int]:
        """Append items (or replace the live ones, ``rewrite``); returns the new version."""
        spec = self.kinds.get(kind, "log")
        check_key(kind, name)
        _check_expected(expected)
        datas = [RawJson(self.encode(spec, name, item, i)[1]) for i, item in enumerate(items)]
        meta_data = None if meta is None else RawJson(self.encode_meta(spec, name, meta))
        default = self.meta_default(spec)
        params = {"kind": kind, "name": name, "n": len(datas), "items": datas,
                  "meta": meta_data, "meta_default": None if default is None else RawJson(default),
                  "sv": spec.schema_version, "expected": expected,
                  "op": "rewrite" if rewrite else "append", "author": author or self.author}
        live = q.LIVE_RESET if rewrite else q.LIVE_KEEP
        # Without metadata, and none to default to, only an existing log can take items.
        needs_head = meta_data is None and default is None
        if expected:
            query = self.sql(q.APPEND_UPDATE, live=live, expect="AND d.version = %(expected)s")
        elif needs_head:
            # expected_version=0 cannot succeed here: say conflict or "needs meta" below.
            query = self.sql(q.APPEND_UPDATE, live=live,
                             expect="AND false" if expected == 0 else "")
        else:
            query = self.sql(q.APPEND_UPSERT, live=live,
                             expect="AND d.deleted" if expected == 0 else "")

        def plan() -> Plan[int]:
            rows = yield Stmt(query, params)
            if rows:
                return int(rows[0][0])
            heads = yield Stmt(self.sql(q.GET_HEAD), params)
            if needs_head and not expected and (not heads or heads[0][5]):
                raise _meta_required(kind, name)
            if expected == 0:
                raise VersionConflict(kind, name, 0, heads[0][0] if heads else 0)
            raise (yield from self._unwritten(spec, name, expected))

        return Op(plan, kind, name)

    def clear(self, kind: str, name: str, expected: int | None) -> Op[int]:
        """Leave the log with no live items; the old ones stay readable by version."""
        spec = self.kinds.get(kind, "log")
        check_key(kind, name)
        _check_expected(expected)

        def plan() -> Plan[int]:
            rows = yield Stmt(self.sql(q.CLEAR_LOG), {"kind": kind, "name": name,
                                                      "expected": expected})
            if rows:
                return int(rows[0][0])
            raise (yield from self._unwritten(spec, name, expected))

        return Op(plan, kind, name)

    def entries(self, kind: str, name: str, last: int | None, after: int | None,
                limit: int | None, where: Any = None) -> Op[list[Entry[Any]]]:
        """Live items in version order, with their versions and write times."""
        spec = self.kinds.get(kind, "log")
        check_key(kind, name)
        if last is not None and limit is not None:
            raise ValueError("give last= or limit=, not both")
        for label, number in (("last", last), ("limit", limit), ("after", after)):
            if number is not None and (not isinstance(number, int) or number < 0):
                raise ValueError(f"{label} must be a non-negative int, not {number!r}")
        fragment, params = compile_where(where, "v.data")
        params.update(kind=kind, name=name, after=after or 0,
                      limit=last if last is not None else limit)
        query = self.sql(q.READ_LAST if last is not None else q.READ_FIRST, where=fragment)

        def plan() -> Plan[list[Entry[Any]]]:
            rows = yield Stmt(query, params)
            if last is not None:
                rows.reverse()
            return [Entry(v, spec.parse(name, v, data, sv), written, sv)
                    for v, sv, written, data in rows]

        return Op(plan, kind, name, read_only=True)

    # --- retention ---------------------------------------------------------------------

    def prune(self, kind: str, older_than: timedelta | datetime | None, keep_last: int | None,
              batch_size: int) -> Op[int]:
        """Delete whole documents by age of last write and/or beyond the newest N."""
        self.kinds.get(kind)
        if older_than is None and keep_last is None:
            raise ValueError("prune needs older_than=, keep_last= or both")
        if keep_last is not None and keep_last < 0:
            raise ValueError(f"keep_last must be >= 0, not {keep_last}")

        def plan() -> Plan[int]:
            cutoff: datetime | None = None
            if isinstance(older_than, timedelta):
                (now,), = yield Stmt("SELECT now()")
                cutoff = now - older_than
            elif older_than is not None:
                cutoff = older_than
            params = {"kind": kind, "cutoff": cutoff, "keep_last": keep_last or 0,
                      "batch": batch_size}
            total = 0
            while True:
                rows = yield Stmt(self.sql(q.PRUNE_DOCUMENTS), params)
                total += len(rows)
                if len(rows) < batch_size:
                    return total

        return Op(plan, kind)

    def prune_versions(self, kind: str, keep_last: int, batch_size: int) -> Op[int]:
        """Drop versions older than the newest ``keep_last`` (live items always stay)."""
        self.kinds.get(kind)
        if not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(f"keep_last must be an int >= 1 (the current version stays), "
                             f"not {keep_last!r}")
        query = self.sql(q.PRUNE_VERSIONS) + " RETURNING 1"

        def plan() -> Plan[int]:
            total = 0
            while True:
                rows = yield Stmt(query, {"kind": kind, "keep_last": keep_last,
                                          "batch": batch_size})
                total += len(rows)
                if len(rows) < batch_size:
                    return total

        return Op(plan, kind)

    # --- export and import -------------------------------------------------------------

    def export_page(self, kinds: Sequence[str] | None, after: tuple[str, str],
                    limit: int) -> Op[tuple[list[str], tuple[str, str] | None]]:
        """Export lines of up to ``limit`` documents after ``after`` (kind, name): each
        head line, then its versions in order. Returns the lines and the next ``after``
        (None when done). Raw JSON as stored: no kind needs registering."""
        for kind in kinds or ():
            check_key(kind)
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit}")
        params = {"kinds": list(kinds) if kinds is not None else None,
                  "after_kind": after[0], "after_name": after[1], "limit": limit}

        def plan() -> Plan[tuple[list[str], tuple[str, str] | None]]:
            heads = yield Stmt(self.sql(q.EXPORT_HEADS), params)
            if not heads:
                return [], None
            rows = yield Stmt(self.sql(q.EXPORT_VERSIONS), {
                "kinds": [h[0] for h in heads], "names": [h[1] for h in heads]})
            versions: dict[tuple[str, str], list[str]] = {}
            for kind, name, line in rows:
                versions.setdefault((kind, name), []).append(line)
            lines: list[str] = []
            for kind, name, line in heads:
                lines.append(line)
                lines.extend(versions.get((kind, name), ()))
            last = (heads[-1][0], heads[-1][1])
            return lines, (last if len(heads) == limit else None)

        return Op(plan, read_only=True)

    def import_lines(self, lines: Sequence[str], first_line: int = 1) -> Op[tuple[int, int]]:
        """Restore export lines; returns (documents, versions) written. Rows already
        stored identically are skipped, so an import runs again safely; a row stored
        differently raises and writes nothing."""
        for offset, line in enumerate(lines):
            _check_export_line(first_line + offset, line)
        params = {"lines": list(lines)}

        def plan() -> Plan[tuple[int, int]]:
            if not lines:
                return 0, 0
            clashes = yield Stmt(self.sql(q.IMPORT_CONFLICTS), params)
            if clashes:
                shown = ", ".join(f"{t} {k} {n!r}" + (f" v{v}" if t == "version" else "")
                                  for t, k, n, v in clashes)
                raise DocStoreError(f"import: the store already holds different data for "
                                    f"{shown}; import restores into an empty store "
                                    f"(nothing was written)")
            (docs, vers), = yield Stmt(self.sql(q.IMPORT_WRITE), params)
            return int(docs), int(vers)

        return Op(plan, atomic=True)

    # --- schema ------------------------------------------------------------------------

    def init_schema(self) -> Op[int]:
        """Apply schema.sql under an advisory lock; returns the recorded DDL version."""

        def plan() -> Plan[int]:
            yield Stmt(q.SCHEMA_LOCK, {"key": "docstore:" + self.sql.schema})
            yield Stmt(self.sql.ddl())
            (recorded,), = yield Stmt(self.sql(q.DDL_VERSION))
            if recorded > DDL_VERSION:
                raise SchemaMissing(
                    f"schema {self.sql.schema!r} is at DDL version {recorded}, newer than this "
                    f"docstore ({DDL_VERSION}): upgrade docstore")
            return int(recorded)

        return Op(plan, atomic=True)

    # --- errors ------------------------------------------------------------------------

    def failure(self, exc: psycopg.Error, op: Op[Any], attempt: int,
                in_transaction: bool) -> DocStoreError | None:
        """The error to raise after a failed attempt, or None to run the operation again.

        Inside the caller's transaction nothing is retried: the transaction is lost and
        only the caller can start it over.
        """
        if in_transaction:
            return self.translate(exc, op)
        if isinstance(exc, pge.DeadlockDetected | pge.SerializationFailure):
            # The whole statement rolled back: running it again is safe.
            return None if attempt < 3 else self.translate(exc, op)
        # A read can run again on a fresh connection. A write's outcome is the caller's to
        # decide (the server may have died after committing), and a statement timeout
        # would only strike again.
        retry = (isinstance(exc, psycopg.OperationalError) and op.read_only and attempt < 2
                 and not isinstance(exc, pge.QueryCanceled))
        return None if retry else self.translate(exc, op)

    def translate(self, exc: psycopg.Error, op: Op[Any] | None = None) -> DocStoreError:
        """A psycopg error as the docstore error that says what to do about it."""
        kind, name = (op.kind, op.name) if op is not None else ("", None)
        where = f"{kind} {name!r}: " if name is not None else (f"kind {kind!r}: " if kind else "")
        schema = self.sql.schema
        if isinstance(exc, pge.UndefinedTable | pge.InvalidSchemaName | pge.UndefinedObject):
            return SchemaMissing(f"{where}docstore's tables are missing from schema {schema!r} "
                                 f"in this database: run store.init_schema() (or `docstore init`)")
        if isinstance(exc, pge.InsufficientPrivilege):
            return PermissionDenied(f"{where}the database role lacks a privilege this needs "
                                    f"(schema {schema!r}): {_first_line(exc)}")
        if isinstance(exc, pge.QueryCanceled):
            return DatabaseUnavailable(f"{where}statement cancelled: {_first_line(exc)}")
        if isinstance(exc, pge.CheckViolation | pge.StringDataRightTruncation):
            return InvalidKey(kind, name, _first_line(exc))
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return DatabaseUnavailable(f"{where}the database connection failed: "
                                       f"{_first_line(exc)}; nothing of this call was kept, "
                                       "it is safe to retry")
        return DocStoreError(f"{where}{type(exc).__name__}: {_first_line(exc)}")


def _meta_required(kind: str, name: str) -> DocumentInvalid:
    return DocumentInvalid(kind, name, None, [{
        "loc": ("meta",), "msg": "a new log needs meta= (its metadata type has required fields)"}],
        "meta")


_LINE_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "document": {"kind": str, "name": str, "mode": str, "version": int, "live_from": int,
                 "schema_version": int, "deleted": bool, "created_at": str,
                 "updated_at": str},
    "version": {"kind": str, "name": str, "version": int, "schema_version": int, "op": str,
                "author": (str, type(None)), "written_at": str},
}


def _check_export_line(number: int, line: str) -> None:
    """Refuse, with its line number, an import line that is not one export wrote."""
    try:
        # The stdlib parser: exact for any integer, and this only checks the shape.
        record = json.loads(line)
    except ValueError as exc:
        raise DocStoreError(f"import line {number}: not JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("t") not in _LINE_FIELDS:
        raise DocStoreError(f"import line {number}: not a docstore export line "
                            "(an object with \"t\": \"document\" or \"version\")")
    for key, types in _LINE_FIELDS[record["t"]].items():
        value = record.get(key)
        if not isinstance(value, types) or (isinstance(value, bool) and types is int):
            raise DocStoreError(f"import line {number}: field {key!r} is missing or has the "
                                f"wrong type")
    if "data" not in record:
        raise DocStoreError(f"import line {number}: field 'data' is missing")
    try:
        check_key(record["kind"], record["name"])
    except InvalidKey as exc:
        raise DocStoreError(f"import line {number}: {exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_statement(stmt: Stmt) -> Plan[Rows]:
    """A plan of one statement whose rows are the result."""
    rows = yield stmt
    return rows
