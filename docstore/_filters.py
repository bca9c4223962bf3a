"""Compile ``where=`` filters and ``order_by=`` orders to SQL whose values are all parameters.

The language (docs/api.md has the user's view, docs/performance.md the index story):

* ``{"llm": {"model": "m"}}`` or ``{"llm.model": "m"}``: equality, compiled to one
  containment test ``col @> %(w_0)s`` (the GIN ``jsonb_path_ops`` index serves it).
  Equalities of one dict are merged into one containment value.
* ``{"path": {"$op": value}}`` with ``$eq $ne $gt $gte $lt $lte $in $nin $exists
  $contains $not``: ``$eq``/``$ne``/``$in``/``$nin``/``$contains`` are containment tests
  (``$in`` is ``col @> ANY(array)``, which the index serves as a bitmap OR); the range
  operators compile to ``jsonb_path_exists(col, path, vars, true)`` where the JSONPath
  text is built only from the path's keys, each one quoted as a JSONPath string, and the
  compared value is the JSONPath variable ``$v`` passed in the ``vars`` parameter; so
  numbers compare as numbers, strings as strings, and a value of another type never
  matches. ``$exists`` is ``col @? path``.
* ``{"$and": [...]}``, ``{"$or": [...]}``, ``{"$not": {...}}`` combine filters.
* ``{"$jsonpath": "$.llm.model == \"m\""}`` (``col @@ path``) and
  ``{"$jsonpath_exists": "$ ? (@.n > 1)"}`` (``col @? path``) take a raw JSONPath, sent as
  a parameter; the value may also be ``{"path": ..., "vars": {...}}``.

A string key is a dotted path at the filter's own level; keys of nested dicts are taken
literally, and a tuple key (``("a.b", "$c")``) is a path of literal keys. Values are
serialised with Pydantic's ``to_json``, like stored documents, so datetimes and models
compare as they were stored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError, to_json

from ._codec import RawJson, find_problem
from ._rows import NamedHead
from .doc import Doc, LogHead
from .errors import InvalidFilter

__all__ = ["Order", "compile_where", "parse_order"]

Path = tuple[str, ...]

_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
FIELD_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains", "$not")
TOP_OPERATORS = ("$and", "$or", "$not", "$jsonpath", "$jsonpath_exists")
MAX_DEPTH = 100
"""How many $and/$or/$not a filter may nest: far beyond any real query."""


def compile_where(where: Any, column: str) -> tuple[str, dict[str, Any]]:
    """An ``AND ...`` fragment on ``column`` (a trusted SQL expression) and its params.

    Raises :class:`~docstore.InvalidFilter` for a filter it cannot compile, before any
    SQL runs.
    """
    if where is None:
        return "", {}
    compiler = _Compiler(column)
    return "AND " + compiler.filter(where), compiler.params


def _show(path: Path) -> str:
    return ".".join(path) if path else "(top level)"


def _json(value: Any, path: Path, op: str) -> bytes:
    """``value`` as JSON bytes, refusing what a stored document could not hold."""
    problem = find_problem(value)
    if problem is not None:
        where = _show(path) + (f" ({problem.path})" if problem.path else "")
        raise InvalidFilter(f"the value at {where} {problem.problem}", op, _show(path))
    try:
        return to_json(value)
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise InvalidFilter(
            f"the value at {_show(path)} cannot be written as JSON: {exc}", op, _show(path)
        ) from None


def _jsonpath_key(key: str, path: Path) -> str:
    """``key`` as a JSONPath string literal (JSON's escapes are a subset of JSONPath's)."""
    if "\x00" in key:
        raise InvalidFilter(f"a key of path {_show(path)} contains \\u0000", "", _show(path))
    try:
        return orjson.dumps(key).decode()
    except orjson.JSONEncodeError:
        raise InvalidFilter(f"a key of path {_show(path)} is not valid UTF-8", "", _show(path)) from None


def jsonpath_of(path: Path) -> str:
    """``$."a"."b"``: the JSONPath of ``path``, every key quoted."""
    return "$" + "".join("." + _jsonpath_key(key, path) for key in path)


def _split(key: Any) -> Path:
    """A filter-level key as a path: dotted string, or tuple of literal keys."""
    if isinstance(key, str):
        parts = tuple(key.split("."))
        if not all(parts):
            raise InvalidFilter(
                f'path {key!r} has an empty segment; write a key with unusual dots as a tuple: ("a.b", "c")',
                "",
                key,
            )
        return parts
    if isinstance(key, tuple) and key and all(isinstance(k, str) for k in key):
        return key
    raise InvalidFilter(
        f"a filter key is a dotted string or a non-empty tuple of strings, not {key!r}", "", repr(key)
    )


def _nest(path: Path, value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


def _merge(into: dict[str, Any], path: Path, value: Any) -> bool:
    """Add ``path = value`` to a containment object; False when it clashes.

    Containment of objects is a conjunction of their parts, so merging never changes
    what matches; only two values for the same key are kept as separate tests.
    """
    node = into
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return False
        node = child
    if path[-1] in node:
        return False
    node[path[-1]] = copy.deepcopy(value) if isinstance(value, dict | list) else value
    return True


class _Compiler:
    """Walks a filter, collecting SQL text (trusted) and parameters (everything else)."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.params: dict[str, Any] = {}
        self.depth = 0

    def deeper(self, op: str, shown: str) -> None:
        """Count one more level of nesting; refuse past MAX_DEPTH (Python's recursion
        limit, and the server's stack, would fail first with worse errors)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidFilter(
                f"the filter is nested too deep (more than {MAX_DEPTH} levels of $and/$or/$not)", op, shown
            )

    def param(self, value: Any, binary: bool = False) -> str:
        name = f"w_{len(self.params)}"
        self.params[name] = value
        return f"%({name})b" if binary else f"%({name})s"

    def contains(self, value: Any, path: Path, op: str) -> str:
        return f"{self.column} @> {self.param(RawJson(_json(value, path, op)))}"

    # --- filter level ------------------------------------------------------------------

    def filter(self, where: Any) -> str:
        if not isinstance(where, Mapping):
            raise InvalidFilter(f"a filter is a dict, not {type(where).__name__}", "", "")
        clauses: list[str] = []
        equal: dict[str, Any] = {}
        for key, value in where.items():
            if isinstance(key, str) and key.startswith("$"):
                clauses.append(self.combinator(key, value))
            else:
                self.field(_split(key), value, equal, clauses)
        if equal:
            clauses.insert(0, self.contains(equal, (), "$eq"))
        return _join(clauses, "AND")

    def combinator(self, op: str, value: Any) -> str:
        if op in ("$and", "$or", "$not"):
            self.deeper(op, "")
        if op in ("$and", "$or"):
            if (
                isinstance(value, Mapping)
                or not isinstance(value, Sequence)
                or isinstance(value, str)
                or not value
            ):
                raise InvalidFilter(f"{op} takes a non-empty list of filters", op, "")
            return "(" + _join([self.filter(f) for f in value], op[1:].upper()) + ")"
        if op == "$not":
            return f"NOT ({self.filter(value)})"
        if op in ("$jsonpath", "$jsonpath_exists"):
            return self.raw_jsonpath(op, value)
        raise InvalidFilter(
            f"unknown filter operator {op!r} at the top level; known here: "
            f"{', '.join(TOP_OPERATORS)}, or a field path",
            op,
            "",
        )

    def raw_jsonpath(self, op: str, value: Any) -> str:
        variables: Any = None
        if isinstance(value, Mapping):
            if set(value) - {"path", "vars"} or "path" not in value:
                raise InvalidFilter(
                    f"{op} takes a JSONPath string or {{'path': ..., 'vars': {{...}}}}", op, ""
                )
            path, variables = value["path"], value.get("vars")
        else:
            path = value
        if not isinstance(path, str) or not path.strip():
            raise InvalidFilter(f"{op} takes a non-empty JSONPath string", op, "")
        if variables is not None and not isinstance(variables, Mapping):
            raise InvalidFilter(f"{op} vars must be a dict", op, "")
        text = self.param(path)
        if not variables:
            return f"{self.column} {'@@' if op == '$jsonpath' else '@?'} {text}::jsonpath"
        func = "jsonb_path_match" if op == "$jsonpath" else "jsonb_path_exists"
        jvars = self.param(RawJson(_json(dict(variables), (), op)))
        return f"{func}({self.column}, {text}::jsonpath, {jvars}, true)"

    # --- a path's conditions -----------------------------------------------------------

    def field(self, path: Path, value: Any, equal: dict[str, Any], clauses: list[str]) -> None:
        if isinstance(value, Mapping) and value:
            ops = [k for k in value if isinstance(k, str) and k.startswith("$")]
            if ops and len(ops) != len(value):
                raise InvalidFilter(
                    f"path {_show(path)} mixes operators ({', '.join(ops)}) "
                    "with field names; match a literal '$' key with $eq",
                    ops[0],
                    _show(path),
                )
            if ops:
                for op in ops:
                    if op == "$eq":
                        self.equal(path, value[op], equal, clauses)
                    else:
                        clauses.append(self.operator(path, op, value[op]))
                return
            for key, sub in value.items():
                if not isinstance(key, str):
                    raise InvalidFilter(
                        f"keys under {_show(path)} must be strings, not {key!r}", "", _show(path)
                    )
                self.field((*path, key), sub, equal, clauses)
            return
        self.equal(path, value, equal, clauses)

    def equal(self, path: Path, value: Any, equal: dict[str, Any], clauses: list[str]) -> None:
        _json(value, path, "$eq")  # refuse NaN and friends now, with the path in the error
        if not _merge(equal, path, value):
            clauses.append(self.contains(_nest(path, value), path, "$eq"))

    def operator(self, path: Path, op: str, arg: Any) -> str:
        shown = _show(path)
        if op == "$ne":
            return f"NOT ({self.contains(_nest(path, arg), path, op)})"
        if op in ("$in", "$nin"):
            if isinstance(arg, str | bytes | Mapping) or not isinstance(arg, Sequence | set):
                raise InvalidFilter(f"{op} at {shown} takes a list of values", op, shown)
            if not arg:
                return "FALSE" if op == "$in" else "TRUE"
            values = [RawJson(_json(_nest(path, v), path, op)) for v in arg]
            # Binary: an array of RawJson has no text form.
            test = f"{self.column} @> ANY({self.param(values, binary=True)}::jsonb[])"
            return test if op == "$in" else f"NOT ({test})"
        if op in _RANGE:
            if not isinstance(arg, int | float | str | datetime):
                raise InvalidFilter(
                    f"{op} at {shown} compares with a number, a string, a "
                    f"boolean or a datetime, not {type(arg).__name__}",
                    op,
                    shown,
                )
            jsonpath = f"{jsonpath_of(path)} ? (@ {_RANGE[op]} $v)"
            jvars = RawJson(b'{"v":' + _json(arg, path, op) + b"}")
            return (
                f"jsonb_path_exists({self.column}, {self.param(jsonpath)}::jsonpath, "
                f"{self.param(jvars)}, true)"
            )
        if op == "$exists":
            if not isinstance(arg, bool):
                raise InvalidFilter(f"$exists at {shown} takes True or False", op, shown)
            test = f"{self.column} @? {self.param(jsonpath_of(path))}::jsonpath"
            return test if arg else f"NOT ({test})"
        if op == "$contains":
            items = list(arg) if isinstance(arg, list | tuple) else [arg]
            return self.contains(_nest(path, items), path, op)
        if op == "$not":
            self.deeper(op, shown)
            if (
                not isinstance(arg, Mapping)
                or not arg
                or not all(isinstance(k, str) and k.startswith("$") for k in arg)
            ):
                raise InvalidFilter(
                    f"$not at {shown} takes a dict of operators, e.g. {{'$gt': 5}}", op, shown
                )
            inner: list[str] = []
            equal: dict[str, Any] = {}
            self.field(path, arg, equal, inner)
            if equal:
                inner.insert(0, self.contains(equal, (), "$eq"))
            return f"NOT {_join(inner, 'AND')}" if len(inner) > 1 else f"NOT ({inner[0]})"
        raise InvalidFilter(
            f"unknown filter operator {op!r} at path {shown}; known: {', '.join(FIELD_OPERATORS)}", op, shown
        )


def _join(clauses: list[str], glue: str) -> str:
    if not clauses:
        return "TRUE"
    if len(clauses) == 1:
        return clauses[0]
    return "(" + f" {glue} ".join(clauses) + ")"


# --- order_by and keyset cursors ------------------------------------------------------

_COLUMNS = {"name": "text", "updated_at": "timestamptz", "created_at": "timestamptz", "version": "bigint"}
_DATA_KEY = "coalesce(data #> %(o_path)s::text[], 'null'::jsonb)"


@dataclass(frozen=True, slots=True)
class Order:
    """A parsed ``order_by``: a head column or a path into ``data``, and a direction.

    Ties are broken by name in the same direction, so ``(key, name)`` is a total order and
    a keyset cursor is the pair of the previous page's last row.
    """

    column: str
    path: Path
    desc: bool

    @property
    def by_name(self) -> bool:
        return self.column == "name"

    @property
    def indexed(self) -> bool:
        """Whether an index holds this order: the primary key (name) or
        documents_kind_updated_idx (updated_at), so a keyset page reads only its rows."""
        return self.column in ("name", "updated_at")

    def key_sql(self) -> str:
        return _DATA_KEY if self.column == "data" else self.column

    def order_sql(self) -> str:
        way = "DESC" if self.desc else "ASC"
        if self.by_name:
            return f"name {way}"
        return f"{self.key_sql()} {way}, name {way}"

    def after_sql(self, has_cursor: bool) -> str:
        """The keyset condition; ``%(o_key)s``/``%(o_name)s`` hold the cursor."""
        if not has_cursor:
            return ""
        cmp = "<" if self.desc else ">"
        if self.by_name:
            return f"AND name {cmp} %(o_name)s"
        cast = "jsonb" if self.column == "data" else _COLUMNS[self.column]
        # The first term alone as well, which an index on the column can start from.
        lead = "" if self.column == "data" else f"AND {self.key_sql()} {cmp}= %(o_key)s::{cast} "
        return f"{lead}AND ({self.key_sql()}, name) {cmp} (%(o_key)s::{cast}, %(o_name)s)"

    def params(self, cursor: tuple[Any, str] | None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.column == "data":
            params["o_path"] = list(self.path)
        if cursor is not None:
            key, params["o_name"] = cursor
            if not self.by_name:
                params["o_key"] = RawJson(_json(key, self.path, "after")) if self.column == "data" else key
        return params

    def cursor(self, after: Any, adapter: TypeAdapter[Any] | None) -> tuple[Any, str] | None:
        """``after`` (None, a name, a Doc or LogHead, or ``(key, name)``) as a ``(key, name)`` pair.

        ``adapter`` dumps a Doc's data back to JSON, for orders on a data path.
        """
        if after is None or after == "":
            return None
        if isinstance(after, str):
            if self.by_name:
                return None, after
            raise InvalidFilter(
                f"order_by={self.spelled()!r} pages with after=<the last Doc "
                "of the previous page> or after=(sort key, name), not a name",
                "after",
                "",
            )
        if isinstance(after, Doc | LogHead):
            return self.doc_key(after, adapter), after.name
        if isinstance(after, tuple) and len(after) == 2 and isinstance(after[1], str):
            return after[0], after[1]
        raise InvalidFilter(
            f"after= is a name, a Doc or a (sort key, name) pair, not {type(after).__name__}", "after", ""
        )

    def doc_key(self, doc: Doc[Any] | LogHead[Any], adapter: TypeAdapter[Any] | None) -> Any:
        if self.column == "data":
            value = doc.meta if isinstance(doc, LogHead) else doc.data
            data = value if adapter is None else adapter.dump_python(value, mode="json", by_alias=True)
            return _dig(data, self.path)
        return None if self.by_name else getattr(doc, self.column)

    def row_cursor(self, row: Sequence[Any]) -> tuple[Any, str]:
        """The cursor after a head row (a ``NamedHead``'s columns)."""
        head = NamedHead._make(row)
        if self.by_name:
            return None, head.name
        if self.column == "data":
            return _dig(orjson.loads(head.data), self.path), head.name
        return getattr(head, self.column), head.name

    def spelled(self) -> str:
        key = "data." + ".".join(self.path) if self.column == "data" else self.column
        return ("-" if self.desc else "") + key


def _dig(data: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def parse_order(order_by: str | None) -> Order:
    """``"name"`` (default), ``"updated_at"``, ``"created_at"``, ``"version"`` or
    ``"data.<dotted path>"``; a leading ``-`` sorts descending."""
    if order_by is None:
        return Order("name", (), False)
    if not isinstance(order_by, str):
        raise InvalidFilter(f"order_by is a string, not {type(order_by).__name__}", "order_by", "")
    desc = order_by.startswith("-")
    key = order_by[1:] if desc else order_by
    if key in _COLUMNS:
        return Order(key, (), desc)
    if key.startswith("data.") and all(key[5:].split(".")):
        return Order("data", tuple(key[5:].split(".")), desc)
    raise InvalidFilter(
        f"cannot order by {order_by!r}: use name, updated_at, created_at, "
        "version or data.<path>, with a leading '-' for descending",
        "order_by",
        key,
    )
