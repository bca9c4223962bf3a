"""``docstore sync PATH...``: the agent framework's config files into the store, through
:func:`docstore.agents.storage.sync_path`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..agents import ConfigFileError
from ..store import DocStore

__all__ = ["sync_configs"]


def sync_configs(
    store: DocStore,
    *paths: str | Path,
    partial: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Store every config found at ``paths`` in one transaction; unchanged ones write nothing.

    Files are read in the framework's order; a name defined again keeps the first and is
    a warning. Broken entries raise :class:`ConfigFileError` and nothing is written, unless
    ``partial``: then the valid ones are stored and the problems reported.
    ``progress(done, total)`` as configs are stored.
    """
    from ..agents.storage import sync_path

    report = sync_path(store, *paths, partial=partial, progress=progress)
    if not report.applied:
        raise ConfigFileError(
            list(report.problems),
            warnings=list(report.warnings),
            note="nothing was written; --partial stores the valid entries",
        )
    kinds: dict[str, dict[str, int]] = {}
    for kind, _name, _version in report.written:
        kinds.setdefault(kind, {"written": 0, "unchanged": 0})["written"] += 1
    for kind, _name in report.unchanged:
        kinds.setdefault(kind, {"written": 0, "unchanged": 0})["unchanged"] += 1
    return {
        "path": str(paths[0]) if len(paths) == 1 else [str(p) for p in paths],
        "kinds": dict(sorted(kinds.items())),
        "written": [list(w) for w in report.written],
        "created": [list(c) for c in report.created],
        "updated": [
            [kind, name, version]
            for kind, name, version in report.written
            if (kind, name) not in set(report.created)
        ],
        "unchanged": [list(u) for u in report.unchanged],
        "problems": [str(p) for p in report.problems],
        "warnings": [str(w) for w in report.warnings],
    }
