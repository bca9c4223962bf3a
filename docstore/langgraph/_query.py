"""What the store turns LangGraph's operations into, free of I/O: document names, filters
as SQL over the ``current_documents`` view, and namespace matching."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from langgraph.store.base import MatchCondition

from docstore import InvalidFilter

# A namespace's labels never hold "." (LangGraph refuses them) nor are empty, so ".."
# never occurs in the joined namespace: the first ".." of a name ends it, and the key
# (which may hold anything, dots too) follows.
SEP = ".."

_COMPARE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def item_name(namespace: Sequence[str], key: str) -> str:
    """The docstore name of the item ``key`` in ``namespace``."""
    return ".".join(namespace) + SEP + key


def split_name(name: str) -> tuple[tuple[str, ...], str]:
    """(namespace, key) of a name :func:`item_name` made."""
    joined, _, key = name.partition(SEP)
    return (tuple(joined.split(".")) if joined else ()), key


def prefix_text(prefix: Sequence[str]) -> str | None:
    """What the names of items in ``prefix`` or below start with (None: every name)."""
    return ".".join(prefix) + "." if prefix else None


def _json(value: Any, path: Sequence[str]) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise InvalidFilter(
            f"filter value at {'.'.join(path)} is not JSON: {exc}", path=".".join(path)
        ) from None


def compile_filter(filter: dict[str, Any] | None) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``d.data`` (all to hold) and their parameters.

    LangGraph's semantics (its in-memory store's): a plain value matches an equal JSON
    value, a dict of plain keys matches those keys, a dict of ``$`` operators applies
    them. Comparisons hold only between values of one JSON type (numbers as numbers).
    """
    sql: list[str] = []
    params: list[Any] = []

    def visit(path: list[str], value: Any) -> None:
        if isinstance(value, dict) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
            for op, arg in value.items():
                operator(path, op, arg)
        elif isinstance(value, dict) and value:
            for key, inner in value.items():
                visit([*path, str(key)], inner)
        else:
            sql.append("(d.data #> %s::text[]) = %s::jsonb")
            params.extend([path, _json(value, path)])

    def operator(path: list[str], op: str, arg: Any) -> None:
        if op == "$eq":
            sql.append("(d.data #> %s::text[]) = %s::jsonb")
        elif op == "$ne":
            sql.append("(d.data #> %s::text[]) IS DISTINCT FROM %s::jsonb")
        elif op in _COMPARE:
            sql.append(
                "(jsonb_typeof(d.data #> %s::text[]) = jsonb_typeof(%s::jsonb)"
                f" AND (d.data #> %s::text[]) {_COMPARE[op]} %s::jsonb)"
            )
            params.extend([path, _json(arg, path)])
        else:
            where = ".".join(path)
            raise InvalidFilter(
                f"unknown filter operator {op!r} at {where} (LangGraph's are $eq $ne $gt $gte $lt $lte)",
                operator=op,
                path=where,
            )
        params.extend([path, _json(arg, path)])

    for key, value in (filter or {}).items():
        visit([str(key)], value)
    return sql, params


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"unknown match_type {condition.match_type!r} (prefix or suffix)")
    return all(want == "*" or got == want for got, want in pairs)


def select_namespaces(
    found: Iterable[tuple[str, ...]],
    conditions: Sequence[MatchCondition] | None,
    max_depth: int | None,
    limit: int,
    offset: int,
) -> list[tuple[str, ...]]:
    """The namespaces matching every condition, cut to ``max_depth``, sorted, paged."""
    kept = {
        ns[:max_depth] if max_depth is not None else ns
        for ns in found
        if all(_matches(c, ns) for c in conditions or ())
    }
    return sorted(kept)[offset : offset + limit]
