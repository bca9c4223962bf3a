"""Plans of log kinds (conversations): appends, rewrites, clears, reads by version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from . import _sql as q
from ._base import CoreBase
from ._codec import RawJson
from ._filters import compile_where
from ._plan import Op, Plan, Stmt, check_expected
from ._rows import Head
from .doc import Items
from .errors import (
    DocumentInvalid,
    VersionConflict,
)
from .kinds import BaseKind, check_key

__all__ = ["LogPlans"]


class LogPlans(CoreBase):
    """Plans for documents whose version N is their N-th item."""

    # --- log kinds ---------------------------------------------------------------------

    def append(
        self,
        kind: str,
        name: str,
        items: Iterable[Any],
        expected: int | None,
        meta: Any,
        rewrite: bool = False,
        author: str | None = None,
        expected_count: int | None = None,
        meta_update: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Op[int]:
        """Append items (or replace the live ones, ``rewrite``); returns the new version.

        ``expected_count`` adds to ``expected``'s check that the log has exactly that many
        live items: a ``clear`` or ``delete`` leaves the version as it was, so only the
        count shows them. ``meta_update`` sets some keys of an existing log's metadata and
        keeps the others (no read-modify-write race); the merged metadata is validated on
        write (per key, with no read, for a metadata model checked field by field; else
        against the stored metadata, locked until the write commits).
        """
        spec = self.kinds.get(kind, "log")
        check_key(kind, name)
        check_expected(expected)
        if expected_count is not None and (
            not expected
            or not isinstance(expected_count, int)
            or isinstance(expected_count, bool)
            or expected_count < 0
        ):
            raise ValueError(
                "expected_count goes with an expected_version >= 1 and is an "
                f"int >= 0, not {expected_count!r}"
            )
        datas = [self.encode(spec, name, item, i)[1] for i, item in enumerate(items)]
        size = sum(map(len, datas))
        small = size <= q.ITEMS_ARRAY_OVER
        meta_data = None if meta is None else RawJson(self.encode_meta(spec, name, meta))
        if meta_update is not None and meta is not None:
            raise ValueError("give meta= (the whole metadata) or meta_update= (some keys), not both")
        patch = (
            None
            if meta_update is None
            else RawJson(self.encode_meta(spec, name, dict(meta_update), partial=True))
        )
        # The merge must be validated against the stored metadata, under a row lock.
        merge_check = patch is not None and self.check_meta_update(spec, name, meta_update or {})
        op = "rewrite" if rewrite else "append"
        keyed = (
            {}
            if idempotency_key is None
            else self.key_params(
                idempotency_key,
                op,
                kind,
                name,
                [
                    None if meta_data is None else meta_data.obj,
                    None if patch is None else patch.obj,
                    *datas,
                ],
            )
        )
        key = q.KEY_ROW if keyed else ""
        default = self.meta_default(spec)
        params = {
            "kind": kind,
            "name": name,
            "n": len(datas),
            # A few messages as one JSON array cost less client CPU and wall time than a
            # jsonb[] (see _sql.ITEMS_JSON; docs/performance.md has the numbers).
            "items": RawJson(b"[" + b",".join(datas) + b"]") if small else [RawJson(d) for d in datas],
            "meta": meta_data,
            "meta_default": None if default is None else RawJson(default),
            "sv": spec.schema_version,
            "expected": expected,
            "expected_count": expected_count,
            "meta_update": patch,
            "op": op,
            "author": author or self.author,
        }
        if keyed:
            params.update(keyed)
        # Without metadata, and none to default to, only an existing log can take items;
        # an update of some keys needs one too.
        needs_head = (meta_data is None and default is None) or patch is not None
        # Looked up by what decides it: write_sql's own key costs more to build.
        which = (
            spec.notify,
            spec.durability,
            rewrite,
            patch is None,
            key,
            needs_head,
            0 if expected is None else 1 if expected == 0 else 2,
            expected_count is None,
            small,
        )
        query = self._append_sqls.get(which)
        if query is None:
            query = self._append_sqls[which] = self._append_sql(
                spec, rewrite, patch is None, key, needs_head, expected, expected_count, small
            )

        def plan() -> Plan[int]:
            if keyed:
                prior = yield from self.prior_write(keyed, op, kind, name)
                if prior is not None:
                    return prior.version
            if merge_check:
                locked = yield Stmt(self.sql(q.LOCK_META), params)
                self.check_merged_meta(spec, name, locked[0][0] if locked else None, dict(meta_update or {}))
            rows = yield Stmt(query, params, size, ())
            if rows:
                return int(rows[0][0])
            if keyed:  # an attempt with this key may have committed meanwhile (see put)
                prior = yield from self.prior_write(keyed, op, kind, name)
                if prior is not None:
                    return prior.version
            heads = yield Stmt(self.sql(q.GET_HEAD), params)
            head = Head._make(heads[0]) if heads else None
            if needs_head and not expected and (head is None or head.deleted):
                raise _meta_required(kind, name)
            if expected == 0:
                raise VersionConflict(kind, name, 0, head.version if head else 0)
            if expected_count is not None and expected and head and head.version == expected:
                raise VersionConflict(
                    kind,
                    name,
                    expected,
                    head.version,
                    (
                        f"expected {expected_count} live items at version {expected}, but it has "
                        f"{head.live_count}: cleared, deleted or rewritten since"
                    ),
                )
            raise (yield from self._unwritten(spec, name, expected))

        made = Op(plan, kind, name)
        # Set, not passed: keyword arguments cost every append more than the rest of Op.
        made.atomic, made.keyed = merge_check, bool(keyed)
        return made

    def _append_sql(
        self,
        spec: BaseKind[Any],
        rewrite: bool,
        replace: bool,
        key: str,
        needs_head: bool,
        expected: int | None,
        expected_count: int | None,
        small: bool,
    ) -> str:
        """The append statement for these circumstances (``replace``: the metadata, if
        given, replaces the stored one whole rather than some of its keys)."""
        if expected:
            statement, expect = (
                q.APPEND_UPDATE,
                "AND d.version = %(expected)s"
                + ("" if expected_count is None else f" AND {q.LIVE_COUNT} = %(expected_count)s"),
            )
        elif needs_head:
            # expected_version=0 cannot succeed here: say conflict or "needs meta" below.
            statement, expect = q.APPEND_UPDATE, "AND false" if expected == 0 else ""
        else:
            statement, expect = q.APPEND_UPSERT, "AND d.deleted" if expected == 0 else ""
        return self.write_sql(
            spec,
            statement,
            live=q.LIVE_RESET if rewrite else q.LIVE_KEEP,
            data=q.META_REPLACE if replace else q.META_UPDATE,
            key=key,
            expect=expect,
            items=q.ITEMS_JSON if small else q.ITEMS_ARRAY,
        )

    def clear(self, kind: str, name: str, expected: int | None) -> Op[int]:
        """Leave the log with no live items; the old ones stay readable by version."""
        spec = self.kinds.get(kind, "log")
        check_key(kind, name)
        check_expected(expected)

        def plan() -> Plan[int]:
            rows = yield Stmt(
                self.write_sql(spec, q.CLEAR_LOG),
                {"kind": kind, "name": name, "op": "clear", "expected": expected},
            )
            if rows:
                return int(rows[0][0])
            raise (yield from self._unwritten(spec, name, expected))

        return Op(plan, kind, name)

    def read(
        self,
        kind: str,
        name: str,
        last: int | None,
        after: int | None,
        limit: int | None,
        where: Any = None,
        into: TypeAdapter[Any] | None = None,
        written_at: bool = False,
    ) -> Op[Items[Any]]:
        """Live items in version order, validated with ``into`` in place of the kind's
        adapter, if given; their versions, and write times if ``written_at``, ride along."""
        spec = self.kinds.get(kind, "log")
        query, params = self._read_stmt(
            spec, name, last, after, limit, where, ", v.written_at" if written_at else ""
        )
        parse = spec.parse
        adapter = spec.adapter if into is None else into
        # The core validator itself: TypeAdapter's method adds a Python call per item.
        validate = adapter.validator.validate_json
        current = spec.schema_version

        def plan() -> Plan[Items[Any]]:
            rows = yield Stmt(query, params)
            if last is not None:
                rows.reverse()
            try:
                # One loop without a call of parse() per item (a visible part of a read of
                # 50); parse() again only to report which item is invalid.
                if written_at:
                    items = [
                        validate(d) if sv == current else parse(name, v, d, sv, adapter)
                        for v, sv, _at, d in rows
                    ]
                else:
                    items = [
                        validate(d) if sv == current else parse(name, v, d, sv, adapter) for v, sv, d in rows
                    ]
            except ValidationError:
                items = [parse(name, row[0], row[-1], row[1], adapter) for row in rows]
            # The columns by one transpose in C; the texts' column is dropped, not kept
            # alive beside the items.
            columns = list(zip(*rows, strict=True)) if rows else [(), (), ()]
            return Items(items, columns[0], columns[1], columns[2] if written_at else None)

        return Op(plan, kind, name, read_only=True)

    def _read_stmt(
        self,
        spec: BaseKind[Any],
        name: str,
        last: int | None,
        after: int | None,
        limit: int | None,
        where: Any,
        written: str,
    ) -> tuple[str, dict[str, Any]]:
        kind = spec.name
        check_key(kind, name)
        if last is not None and limit is not None:
            raise ValueError("give last= or limit=, not both")
        for label, number in (("last", last), ("limit", limit), ("after", after)):
            if number is not None and (not isinstance(number, int) or number < 0):
                raise ValueError(f"{label} must be a non-negative int, not {number!r}")
        fragment, params = compile_where(where, "v.data")
        params.update(kind=kind, name=name, after=after or 0, limit=last if last is not None else limit)
        return self.sql(
            q.READ_LAST if last is not None else q.READ_FIRST, written=written, where=fragment
        ), params


def _meta_required(kind: str, name: str) -> DocumentInvalid:
    return DocumentInvalid(
        kind,
        name,
        None,
        [{"loc": ("meta",), "msg": "a new log needs meta= (its metadata type has required fields)"}],
        "meta",
    )
