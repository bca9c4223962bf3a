"""``docstore sync PATH``: the agent framework's config files into the store, through
:func:`docstore.agents.storage.sync_path`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..agents import ConfigFileError
from ..store import DocStore

__all__ = ["sync_configs"]


def sync_configs(store: DocStore, path: str | Path, *, partial: bool = False) -> dict[str, Any]:
    """Store every config found at ``path`` in one transaction; unchanged ones write nothing.

    Broken entries raise :class:`ConfigFileError` and nothing is written, unless
    ``partial``: then the valid ones are stored and the problems reported.
    """
    from ..agents.storage import sync_path

    report = sync_path(store, path, partial=partial)
    if not report.applied:
        raise ConfigFileError(list(report.problems))
    kinds: dict[str, dict[str, int]] = {}
    for kind, _name, _version in report.written:
        kinds.setdefault(kind, {"written": 0, "unchanged": 0})["written"] += 1
    for kind, _name in report.unchanged:
        kinds.setdefault(kind, {"written": 0, "unchanged": 0})["unchanged"] += 1
    return {"path": str(path), "kinds": dict(sorted(kinds.items())),
            "written": [list(w) for w in report.written],
            "problems": [str(p) for p in report.problems]}
