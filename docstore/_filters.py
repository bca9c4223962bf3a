"""Compile ``where=`` filters to SQL whose values are all parameters."""

from __future__ import annotations

from typing import Any

import orjson

from ._codec import RawJson

__all__ = ["compile_where"]


def compile_where(where: Any, column: str) -> tuple[str, dict[str, Any]]:
    """An ``AND ...`` fragment on ``column`` (a trusted SQL expression) and its params.

    A dict is matched by containment (``@>``), which the GIN index on documents serves.
    """
    if where is None:
        return "", {}
    if not isinstance(where, dict):
        raise TypeError(f"where must be a dict, not {type(where).__name__}")
    return f"AND {column} @> %(w_contains)s", {"w_contains": RawJson(orjson.dumps(where))}
