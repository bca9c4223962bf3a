"""JSON bytes in and out of the database, and the policy for what JSONB cannot hold.

The policy, one rule per case, applied to every write of every kind:

* ``\\u0000`` in a string: refused (JSONB cannot store it), the error names the path.
* NaN and +/-Infinity: refused (JSON has no such numbers, and Pydantic would silently
  write ``null`` instead), the error names the path.
* Lone surrogates (``"\\ud800"``): refused (not valid UTF-8), the error names the path.
* Nesting deeper than :data:`MAX_DEPTH` (200) levels: refused, since Pydantic could not
  parse it back on read.

Refusing beats a reversible encoding here because the same JSON is read by plain SQL
analytics, which would have to know the encoding; a clear error at the write is the one
behaviour every reader can rely on.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticSerializationError, from_json, to_json

__all__ = ["MAX_DEPTH", "JsonProblem", "RawJson", "dump", "find_problem", "writes_plain"]

MAX_DEPTH = 200
"""Nesting (arrays and objects) that Pydantic's JSON parser reads back; deeper is refused."""

_TOO_DEEP = (
    f"nests arrays/objects more than {MAX_DEPTH} levels deep, more than Pydantic's JSON parser reads back"
)


def _as_is(data: bytes) -> bytes:
    return data


class RawJson(Jsonb):
    """JSON text already serialised, sent to PostgreSQL as ``jsonb`` without re-encoding.

    A ``Jsonb`` whose ``dumps`` hands the bytes through, so psycopg's own jsonb dumpers
    send it (binary or text) and no connection needs adapting.
    """

    __slots__ = ()

    def __init__(self, data: bytes) -> None:
        # Jsonb's own attributes, set here rather than through super().__init__: one
        # call less for every document written.
        self.obj = data
        self.dumps = _as_is


@dataclasses.dataclass(frozen=True, slots=True)
class JsonProblem:
    """Why a value cannot be stored as JSONB, and where in it."""

    path: str
    problem: str

    def as_error(self) -> dict[str, Any]:
        """The problem as a Pydantic-style error dict."""
        return {
            "loc": tuple(self.path.split(".")) if self.path else (),
            "msg": self.problem,
            "type": "jsonb_unrepresentable",
        }


# What orjson must not write itself, so that Pydantic does: datetimes, dataclasses and
# subclasses of str, int, dict and list go to orjson's default, and there is none.
_PLAIN_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)

_ANY: dict[str, Any] = {"type": "any"}
_PLAIN_SCHEMAS = (
    _ANY,
    {"type": "dict", "keys_schema": _ANY, "values_schema": _ANY},
    {"type": "dict", "keys_schema": {"type": "str"}, "values_schema": _ANY},
    {"type": "list", "items_schema": _ANY},
)


def writes_plain(adapter: TypeAdapter[Any]) -> bool:
    """Whether ``adapter`` is one whose values orjson writes as Pydantic does, wherever
    orjson writes them at all: ``dict``, ``dict[str, Any]``, ``list``, ``Any`` with
    Pydantic's default config. Pydantic serialises such values by looking at each one's
    type, as orjson does; tests/test_codec.py proves the bytes equal over every kind of
    value such a document may hold, and that orjson refuses the rest (which Pydantic then
    writes, or refuses, as before). The one value orjson writes and Pydantic refuses is
    orjson's own ``Fragment`` (JSON text written as it is)."""
    try:
        schema = adapter.core_schema
        if schema not in _PLAIN_SCHEMAS:
            return False
        # A config can make Pydantic write NaN and infinity as constants (orjson: null).
        probe = [math.nan, math.inf, -math.inf]
        sample = {"x": probe} if schema["type"] == "dict" else probe
        return bool(adapter.serializer.to_json(sample) == orjson.dumps(sample))
    except Exception:  # an adapter that cannot say: Pydantic writes its values
        return False


def dump(adapter: TypeAdapter[Any], value: Any, plain: bool = False) -> bytes | JsonProblem:
    """Serialise a validated value to JSON bytes, or say why it cannot be stored.
    ``plain``: :func:`writes_plain` holds for ``adapter``, so orjson may write it."""
    try:
        if plain:
            try:
                data = orjson.dumps(value, option=_PLAIN_OPTIONS)
            except TypeError:  # (orjson.JSONEncodeError too) Pydantic writes it, or says why not
                data = adapter.serializer.to_json(value, by_alias=True)
        else:
            # The core serializer: TypeAdapter.dump_json is a Python layer over it.
            data = adapter.serializer.to_json(value, by_alias=True)
    except PydanticSerializationError as exc:
        found = find_problem(value)
        if found is None and "depth" in str(exc):
            return JsonProblem("", _TOO_DEEP)
        return found or JsonProblem("", f"cannot be serialised to JSON: {exc}")
    # Fast path: the markers below are what a problem leaves in the output, so most
    # values skip the walk. A marker inside an ordinary string only costs a walk.
    # U+FFFD is what Pydantic silently writes for a lone surrogate in a dict key.
    # find() of one byte is a memchr: a NUL is written as an escape (a backslash) and
    # U+FFFD starts with 0xEF, so most values are cleared without a multi-byte search.
    # (`in` with a bytes needle costs more: CPython tries it as an int first, and builds
    # and drops a TypeError every time.)
    if (
        (data.find(92) >= 0 and data.find(b"\\u0000") >= 0)
        or (data.find(0xEF) >= 0 and data.find(b"\xef\xbf\xbd") >= 0)
        or (data.find(b"null") >= 0 and _may_hold_nonfinite(adapter, value))
    ):
        found = find_problem(value)
        if found is not None:
            return found
    # Refuse what could be stored but never read back: Pydantic's JSON parser stops at
    # MAX_DEPTH levels. Only a value with that many brackets can be that deep.
    if _many_brackets(data):
        try:
            from_json(data)
        except ValueError as exc:
            if "recursion limit" in str(exc):
                return JsonProblem("", _TOO_DEEP)
            raise
    return data


def _many_brackets(data: bytes) -> bool:
    """Whether ``data`` has more than MAX_DEPTH opening brackets, which nesting deeper
    than that needs (and more than twice as many bytes: each level opens and closes)."""
    return len(data) > 2 * MAX_DEPTH and data.count(b"[") + data.count(b"{") > MAX_DEPTH


def _may_hold_nonfinite(adapter: TypeAdapter[Any], value: Any) -> bool:
    """Whether ``value`` may hold a NaN or infinity, which Pydantic writes as ``null``.

    Most documents have ``null`` for a None, and walking them in Python costs ten times
    their serialisation. Dumping them again in Rust with NaN and infinity spelled out
    tells in microseconds whether the walk could find one (a false alarm only costs it).
    """
    # First the cheaper test: without its None fields a value writes ``null`` only for a
    # None in a list or for a non-finite float (exclude_none keeps NaN, which is no None).
    if b"null" not in adapter.dump_json(value, by_alias=True, exclude_none=True):
        return False
    try:
        probe = to_json(
            adapter.dump_python(value, by_alias=True), inf_nan_mode="constants", serialize_unknown=True
        )
    except (PydanticSerializationError, ValueError, TypeError):
        return True
    return b"NaN" in probe or b"Infinity" in probe


def find_problem(value: Any, path: str = "") -> JsonProblem | None:
    """The first NUL, lone surrogate or non-finite float in ``value``, depth first."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return JsonProblem(where, "contains \\u0000, which PostgreSQL's jsonb cannot store")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return JsonProblem(where, "contains a lone surrogate, which is not valid UTF-8")
        elif isinstance(item, float):
            if not math.isfinite(item):
                return JsonProblem(where, f"is {item!r}; JSON has no NaN or Infinity")
        elif isinstance(item, dict):
            for key, sub in item.items():
                key_path = _join(where, str(key))
                if isinstance(key, str):
                    bad = find_problem(key, key_path)
                    if bad is not None:
                        # The path must print: escape the very characters at fault.
                        return JsonProblem(_join(where, _printable(key)), "key " + bad.problem)
                stack.append((key_path, sub))
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend((_join(where, str(i)), sub) for i, sub in enumerate(item))
        elif isinstance(item, BaseModel):
            fields = dict(item.__dict__)
            fields.update(item.__pydantic_extra__ or {})
            stack.append((where, fields))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.append((where, {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}))
    return None


def _printable(text: str) -> str:
    """``text`` with NULs and lone surrogates as backslash escapes, safe to print and log."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part
