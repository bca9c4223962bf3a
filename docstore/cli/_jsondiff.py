"""A readable diff of two JSON values: one line per changed path."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["Change", "diff", "render"]

Change = dict[str, Any]
"""``{"op": "add"|"remove"|"change", "path": "llm.temperature", "old": ..., "new": ...}``"""


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    simple = text.isidentifier()
    if not path:
        return text if simple else f"[{orjson.dumps(text).decode()}]"
    return f"{path}.{text}" if simple else f"{path}[{orjson.dumps(text).decode()}]"


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """Changes from ``old`` to ``new``: objects by key, lists by position."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in old:
            if key not in new:
                changes.append({"op": "remove", "path": _join(path, key), "old": old[key]})
            else:
                changes.extend(diff(old[key], new[key], _join(path, key)))
        for key in new:
            if key not in old:
                changes.append({"op": "add", "path": _join(path, key), "new": new[key]})
        return changes
    if isinstance(old, list) and isinstance(new, list):
        changes = []
        for i in range(max(len(old), len(new))):
            if i >= len(new):
                changes.append({"op": "remove", "path": _join(path, i), "old": old[i]})
            elif i >= len(old):
                changes.append({"op": "add", "path": _join(path, i), "new": new[i]})
            else:
                changes.extend(diff(old[i], new[i], _join(path, i)))
        return changes
    if old == new and type(old) is type(new):
        return []
    return [{"op": "change", "path": path or "(value)", "old": old, "new": new}]


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 120 else text[:117] + "..."


def render(changes: list[Change]) -> list[str]:
    """``+ path: new``, ``- path: old``, ``~ path: old -> new``."""
    lines = []
    for change in changes:
        if change["op"] == "add":
            lines.append(f"+ {change['path']}: {_show(change['new'])}")
        elif change["op"] == "remove":
            lines.append(f"- {change['path']}: {_show(change['old'])}")
        else:
            lines.append(f"~ {change['path']}: {_show(change['old'])} -> {_show(change['new'])}")
    return lines
