"""Plans of snapshot kinds (configs): versioned writes, reads, history, listing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import orjson

from . import _sql as q
from ._base import CoreBase, literal
from ._codec import RawJson
from ._filters import Order, compile_where, parse_order
from ._plan import OnInvalid, Op, Plan, Row, Rows, Stmt, check_expected
from ._rows import HEAD_TEXT, Head, NamedHead, Prior
from .doc import Doc
from .errors import (
    Contention,
    DocumentInvalid,
    DocumentNotFound,
    KindMismatch,
    VersionConflict,
)
from .kinds import ANY_DICT, BaseKind, check_key

__all__ = ["PUT_MANY_CHUNK", "SnapshotPlans"]

PUT_MANY_CHUNK = 1000
"""Documents per statement of a put_many (~2 MB of 2 KB configs)."""


class SnapshotPlans(CoreBase):
    """Plans for documents written whole, one version per change."""

    # --- snapshot kinds ----------------------------------------------------------------

    def put(
        self,
        kind: str,
        name: str,
        value: Any,
        expected: int | None,
        op: str = "put",
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> Op[Doc[Any]]:
        """Write ``value`` as the next version, unless it equals the current one.

        With ``idempotency_key``, a write that finds its key already recorded returns
        what that write returned and writes nothing.
        """
        spec = self.kinds.get(kind, "snapshot")
        check_key(kind, name)
        check_expected(expected)
        validated, data = self.encode(spec, name, value)
        keyed = (
            {}
            if idempotency_key is None
            else self.key_params(idempotency_key, op, kind, name, [data, str(spec.schema_version).encode()])
        )
        # A partial, not a lambda: no closure cells for put's locals, no Python frame
        # between the driver and the plan.
        made = Op(
            partial(self._put_plan, spec, name, validated, data, expected, op, author, keyed), kind, name
        )
        made.keyed = bool(keyed)  # (set, not passed: a keyword argument costs more)
        return made

    def _put_plan(
        self,
        spec: BaseKind[Any],
        name: str,
        validated: Any,
        data: bytes,
        expected: int | None,
        op: str,
        author: str | None,
        keyed: Mapping[str, Any] | None = None,
    ) -> Plan[Doc[Any]]:
        params = {
            "kind": spec.name,
            "name": name,
            "sv": spec.schema_version,
            "data": RawJson(data),
            "expected": expected,
            "op": op,
            "author": author or self.author,
        }
        if keyed:
            params.update(keyed)
            prior = yield from self.prior_write(keyed, op, spec.name, name)
            if prior is not None:
                return self._replayed(spec, name, validated, prior)
        query = self._put_sql(spec, expected, bool(keyed))
        for _attempt in range(3):
            rows = yield Stmt(query, params, len(data), ())
            if rows:
                # The head this put wrote, or (unkeyed) the head that held its value already.
                version, created, updated, wrote = rows[0]
                # (changed by position: a keyword argument costs the call more)
                return Doc(
                    spec.name,
                    name,
                    version,
                    validated,
                    spec.schema_version,
                    created,
                    updated,
                    False,
                    None,
                    wrote,
                )
            done = yield from self._put_unwritten(spec, name, validated, data, params, keyed)
            if done is not None:
                return done
        raise Contention(f"{spec.name} {name!r}: the write kept racing with other writers")

    def _put_sql(self, spec: BaseKind[Any], expected: int | None, keyed: bool) -> str:
        """The put statement for this expectation. Unkeyed, and unless the document must
        not exist, it also returns the head that holds the value already (q.PUT_SAME); a
        keyed put records its key for such a head, which takes a statement more."""
        # Looked up by what decides it: write_sql's own key costs more to build.
        which = (spec.notify, spec.durability, 0 if expected is None else 1 if expected == 0 else 2, keyed)
        text = self._put_sqls.get(which)
        if text is None:
            text = self._put_sqls[which] = self._put_sql_for(spec, expected, keyed)
        return text

    def _put_sql_for(self, spec: BaseKind[Any], expected: int | None, keyed: bool) -> str:
        key = q.KEY_ROW if keyed else ""
        if expected == 0:
            return self.write_sql(spec, q.PUT_UPSERT, expect="AND d.deleted", key=key, same="")
        if expected is None:
            return self.write_sql(spec, q.PUT_UPSERT, expect="", key=key, same="" if keyed else q.PUT_SAME)
        same = "" if keyed else q.PUT_SAME + q.PUT_SAME_AT
        return self.write_sql(spec, q.PUT_UPDATE, key=key, same=same)

    def _put_unwritten(
        self,
        spec: BaseKind[Any],
        name: str,
        validated: Any,
        data: bytes,
        params: dict[str, Any],
        keyed: Mapping[str, Any] | None,
    ) -> Plan[Doc[Any] | None]:
        """After a put that wrote nothing: the Doc to return (the value was stored
        already), or None to write again (the document went meanwhile); a conflict or a
        mode clash raises."""
        name_, expected, op = spec.name, params["expected"], params["op"]
        if keyed:
            # An attempt with this key still in flight when we looked may have
            # committed while we waited for its lock: that is our write, not a conflict.
            prior = yield from self.prior_write(keyed, op, name_, name)
            if prior is not None:
                return self._replayed(spec, name, validated, prior)
        heads = yield Stmt(self.sql(q.GET_HEAD), params)
        if not heads:
            if expected is None or expected == 0:
                return None  # deleted under our feet: write again
            raise VersionConflict(name_, name, expected, 0)
        head = Head._make(heads[0])
        self.mode_of(spec, name, head.mode)
        if expected == 0 or (expected is not None and expected != head.version):
            raise VersionConflict(name_, name, expected, head.version)
        if (
            not head.deleted
            and head.schema_version == spec.schema_version
            and orjson.loads(head.data) == orjson.loads(data)
        ):
            return (yield from self._put_same(spec, name, validated, head, params, keyed))
        if expected is not None:
            raise VersionConflict(name_, name, expected, head.version)
        return None

    def _put_same(
        self,
        spec: BaseKind[Any],
        name: str,
        validated: Any,
        head: Head,
        params: dict[str, Any],
        keyed: Mapping[str, Any] | None,
    ) -> Plan[Doc[Any]]:
        """A put of the value the head holds: nothing written (a keyed one records its
        key, so that a retry returns the same)."""
        if keyed:
            recorded = yield Stmt(
                self.sql(q.KEY_RECORD),
                {**params, "version": head.version, "created": head.created_at, "updated": head.updated_at},
            )
            if not recorded:  # the same key, recorded meanwhile: its answer holds
                prior = yield from self.prior_write(keyed, params["op"], spec.name, name)
                if prior is not None:
                    return self._replayed(spec, name, validated, prior)
        return Doc(
            spec.name,
            name,
            head.version,
            validated,
            head.schema_version,
            head.created_at,
            head.updated_at,
            changed=False,
        )

    @staticmethod
    def _replayed(spec: BaseKind[Any], name: str, validated: Any, prior: Prior) -> Doc[Any]:
        """What a keyed put returns when its key was written already: that write's answer."""
        return Doc(
            spec.name,
            name,
            prior.version,
            validated,
            spec.schema_version,
            prior.created_at,
            prior.written_at,
            changed=prior.wrote,
        )

    def get(self, kind: str, name: str, version: int | None) -> Op[Doc[Any]]:
        """The current document (or one version of it)."""
        spec = self.kinds.get(kind)
        check_key(kind, name)
        if version is not None and spec.mode == "log":
            raise KindMismatch(f"kind {kind!r} is a log kind: read items with read(after=...)")
        made = Op(partial(self._get_plan, spec, name, version), kind, name)
        made.read_only = True
        return made

    def _get_plan(self, spec: BaseKind[Any], name: str, version: int | None) -> Plan[Doc[Any]]:
        params = {"kind": spec.name, "name": name, "version": version}
        if version is None:
            rows = yield Stmt(self.sql(q.GET_HEAD), params, 0, HEAD_TEXT)
            head = Head._make(rows[0]) if rows else None
            if head is None or head.deleted:
                raise DocumentNotFound(spec.name, name, reason="deleted" if head else "")
            self.mode_of(spec, name, head.mode)
            return self.head_doc(spec, name, head)
        rows = yield Stmt(self.sql(q.GET_VERSION), params, 0, (2,))
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
            heads = map(NamedHead._make, rows)
            found = {head.name: self.head_doc(spec, head.name, head) for head in heads}
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
            return [
                Doc(kind, name, v, spec.parse(name, v, data, sv), sv, created, written, tomb)
                for v, sv, data, created, written, tomb in rows
            ]

        return Op(plan, kind, name, read_only=True)

    def delete(
        self,
        kind: str,
        name: str,
        expected: int | None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> Op[int]:
        """Mark the document deleted (a tombstone version for snapshot kinds)."""
        spec = self.kinds.get(kind)
        check_key(kind, name)
        check_expected(expected)
        keyed = self.key_params(idempotency_key, "delete", kind, name, [])
        params = {
            "kind": kind,
            "name": name,
            "expected": expected,
            "op": "delete",
            "author": author or self.author,
            **keyed,
        }
        query = self.write_sql(
            spec,
            q.DELETE_SNAPSHOT if spec.mode == "snapshot" else q.DELETE_LOG,
            key=q.KEY_ROW if keyed else "",
        )

        def plan() -> Plan[int]:
            if keyed:
                prior = yield from self.prior_write(keyed, "delete", kind, name)
                if prior is not None:
                    return prior.version
            rows = yield Stmt(query, params)
            if rows:
                return int(rows[0][0])
            if keyed:  # an attempt with this key may have committed meanwhile (see put)
                prior = yield from self.prior_write(keyed, "delete", kind, name)
                if prior is not None:
                    return prior.version
            raise (yield from self._unwritten(spec, name, expected))

        return Op(plan, kind, name, keyed=bool(keyed))

    def restore(self, kind: str, name: str, expected: int | None, author: str | None = None) -> Op[int]:
        """Undo a delete: a snapshot's deleted value as a new version, a log's items live
        again. A live document is left as it is; one purged or pruned is not found."""
        spec = self.kinds.get(kind)
        check_key(kind, name)
        check_expected(expected)

        def plan() -> Plan[int]:
            # A second look when another writer moved the document between our read and
            # our write (another restore, an append): live then, it is restored already.
            for _look in range(2):
                rows = yield Stmt(self.sql(q.GET_HEAD), {"kind": kind, "name": name})
                if not rows:
                    raise DocumentNotFound(kind, name)
                head = Head._make(rows[0])
                self.mode_of(spec, name, head.mode)
                if expected is not None and head.version != expected:
                    raise VersionConflict(kind, name, expected, head.version)
                if not head.deleted:
                    return head.version
                if spec.mode == "snapshot":
                    # The tombstone holds the value it deleted.
                    old = yield from self._get_plan(spec, name, head.version)
                    validated, data = self.encode(spec, name, old.data)
                    try:
                        doc = yield from self._put_plan(
                            spec, name, validated, data, head.version, "revert", author
                        )
                    except VersionConflict:
                        if expected is not None:
                            raise
                        continue
                    return doc.version
                params = {"kind": kind, "name": name, "expected": head.version, "op": "restore"}
                written = yield Stmt(self.write_sql(spec, q.RESTORE_LOG), params)
                if written:
                    return int(written[0][0])
                if expected is not None:
                    break
            raise (yield from self._unwritten(spec, name, expected))

        return Op(plan, kind, name, atomic=True)

    def revert(
        self, kind: str, name: str, to_version: int, expected: int | None, author: str | None = None
    ) -> Op[Doc[Any]]:
        """Write version ``to_version``'s value as a new version."""
        spec = self.kinds.get(kind, "snapshot")
        check_key(kind, name)
        check_expected(expected)

        def plan() -> Plan[Doc[Any]]:
            old = yield from self._get_plan(spec, name, to_version)
            validated, data = self.encode(spec, name, old.data)
            return (yield from self._put_plan(spec, name, validated, data, expected, "revert", author))

        return Op(plan, kind, name, atomic=True)

    def put_many(self, kind: str, values: Mapping[str, Any], author: str | None = None) -> Op[list[Doc[Any]]]:
        """Write many documents atomically; unchanged ones write nothing.

        Up to PUT_MANY_CHUNK documents: one statement, everything validated before it
        runs. More: statements of PUT_MANY_CHUNK each, pipelined in one transaction, the
        next chunk validated and encoded while the server writes the previous one (a bad
        value there rolls back what was sent).
        """
        spec = self.kinds.get(kind, "snapshot")
        for name in values:
            check_key(kind, name)
        # One lock order for every batch and every chunk, so overlapping batches cannot
        # deadlock: code point order, which the SQL's ORDER BY ... COLLATE "C" repeats.
        ordered = sorted(values)
        validated: dict[str, Any] = {}
        encoded: dict[str, RawJson] = {}

        def chunk(start: int) -> Stmt:
            names = ordered[start : start + PUT_MANY_CHUNK]
            for name in names:
                if name not in encoded:
                    validated[name], data = self.encode(spec, name, values[name])
                    encoded[name] = RawJson(data)
            return Stmt(
                self.write_sql(spec, q.PUT_MANY),
                {
                    "kind": kind,
                    "names": names,
                    "datas": [encoded[n] for n in names],
                    "sv": spec.schema_version,
                    "author": author or self.author,
                },
            )

        first = chunk(0) if ordered else None

        def plan() -> Plan[list[Doc[Any]]]:
            if first is None:
                return []
            rest = range(PUT_MANY_CHUNK, len(ordered), PUT_MANY_CHUNK)
            rows = yield (
                first if not rest else Stmt(first.query, first.params, more=(chunk(i) for i in rest))
            )
            # name -> (version, created_at, updated_at, changed)
            written = {name: (version, created, updated, True) for name, version, created, updated in rows}
            if len(written) < len(ordered):
                missing = [n for n in ordered if n not in written]
                heads = yield Stmt(self.sql(q.GET_HEADS), {"kind": kind, "names": missing})
                for head in map(NamedHead._make, heads):
                    self.mode_of(spec, head.name, head.mode)
                    written[head.name] = (head.version, head.created_at, head.updated_at, False)
            docs = []
            for n in values:
                version, created, updated, changed = written[n]
                sv = spec.schema_version
                docs.append(Doc(kind, n, version, validated[n], sv, created, updated, changed=changed))
            return docs

        return Op(plan, kind, atomic=len(ordered) > PUT_MANY_CHUNK)

    def list_docs(
        self,
        kind: str,
        where: Any,
        limit: int | None,
        after: Any,
        on_invalid: OnInvalid = "raise",
        order_by: str | None = "name",
    ) -> Op[list[Doc[Any]]]:
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

    def count(self, kind: str, where: Any) -> Op[int]:
        """How many current, undeleted documents match ``where``."""
        self.kinds.get(kind)
        fragment, params = compile_where(where, "data")
        params.update(kind=kind)
        stmt = Stmt(self.sql(q.COUNT_HEADS, where=fragment), params)

        def plan() -> Plan[int]:
            rows = yield stmt
            return int(rows[0][0])

        return Op(plan, kind, read_only=True)

    def _list_stmt(
        self, kind: str, where: Any, order: Order, cursor: tuple[Any, str] | None, limit: int | None
    ) -> Stmt:
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or a non-negative int, not {limit!r}")
        fragment, params = compile_where(where, "data")
        params.update(order.params(cursor), kind=kind, limit=limit)
        return Stmt(
            self.sql(
                q.LIST_HEADS,
                where=fragment,
                after=order.after_sql(cursor is not None),
                order=order.order_sql(),
                kind=literal(kind),
            ),
            params,
        )

    def docs_from_rows(self, spec: BaseKind[Any], rows: Rows, on_invalid: OnInvalid) -> list[Doc[Any]]:
        """Head rows (name first) as Docs, skipping invalid ones when asked to."""
        docs = []
        for row in rows:
            try:
                head = NamedHead._make(row)
                docs.append(self.head_doc(spec, head.name, head))
            except DocumentInvalid:
                if on_invalid == "raise":
                    raise
        return docs

    def iter_batch(
        self, kind: str, where: Any, after: Any, batch: int, order_by: str | None = "name"
    ) -> Stmt:
        """One page of an ``iter``: keyset pagination after ``after`` (see list_docs)."""
        spec = self.kinds.get(kind)
        order = parse_order(order_by)
        adapter = (spec.meta or ANY_DICT) if spec.mode == "log" else spec.adapter
        return self._list_stmt(kind, where, order, order.cursor(after, adapter), batch)

    def iter_step(
        self, kind: str, where: Any, state: Any, batch: int, order_by: str | None = "name"
    ) -> Op[tuple[Rows, Any]]:
        """One page of an ``iter`` and the state for the next (None: no more).

        Orders an index holds (name, updated_at) page by keyset. Any other order would
        sort every remaining row for each page (quadratic in the kind's size), so the
        first step reads the names in that order once and each page reads documents by
        name (linear; the names are held in memory).
        """
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch_size must be an int >= 1, not {batch!r}")
        order = parse_order(order_by)
        if order.indexed:
            stmt = self.iter_batch(kind, where, "" if state is None else state, batch, order_by)

            def keyset() -> Plan[tuple[Rows, Any]]:
                rows = yield stmt
                more = len(rows) == batch
                return rows, (self.iter_after(rows[-1], order_by) if more else None)

            return Op(keyset, kind, read_only=True)
        self.kinds.get(kind)
        fragment, params = compile_where(where, "data")
        params.update(order.params(None), kind=kind)

        def by_names() -> Plan[tuple[Rows, Any]]:
            if state is None:
                found = yield Stmt(self.sql(q.ITER_NAMES, where=fragment, order=order.order_sql()), params)
                names, offset = [r[0] for r in found], 0
            else:
                names, offset = state
            chunk = names[offset : offset + batch]
            if not chunk:
                return [], None
            rows = yield Stmt(self.sql(q.ITER_PAGE, where=fragment), {**params, "names": chunk})
            offset += batch
            return rows, ((names, offset) if offset < len(names) else None)

        return Op(by_names, kind, read_only=True)

    @staticmethod
    def iter_after(row: Row, order_by: str | None = "name") -> tuple[Any, str]:
        """The cursor that follows a page whose last head row is ``row``."""
        return parse_order(order_by).row_cursor(row)

    def upgrade(self, kind: str, batch_size: int, progress: Callable[[int], None] | None) -> Op[int]:
        """Rewrite documents stored at an older schema_version as new versions."""
        spec = self.kinds.get(kind, "snapshot")

        def plan() -> Plan[int]:
            done, after = 0, ""
            while True:
                rows = yield Stmt(
                    self.sql(q.STALE_NAMES),
                    {"kind": kind, "sv": spec.schema_version, "after": after, "limit": batch_size},
                )
                if not rows:
                    return done
                for (name,) in rows:
                    current = yield from self._get_plan(spec, name, None)
                    validated, data = self.encode(spec, name, current.data)
                    yield from self._put_plan(
                        spec, name, validated, data, current.version, "put", "docstore upgrade"
                    )
                    done += 1
                after = rows[-1][0]
                if progress is not None:
                    progress(done)

        return Op(plan, kind)
