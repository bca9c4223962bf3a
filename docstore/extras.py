"""How to add an extra to this docstore, said the way it was installed.

docstore is not on a package index yet: it is installed from a clone (often editable) or
from a wheel built from one. pip records where a distribution came from (PEP 610's
``direct_url.json``), so a hint names that place; from an index it names the project.
"""

from __future__ import annotations

import functools
import json
from importlib import metadata
from urllib.parse import unquote, urlparse

__all__ = ["install_extra"]


@functools.cache
def _origin() -> tuple[str, bool] | None:
    """(the local path docstore was installed from, whether editably), or None."""
    try:
        recorded = metadata.distribution("docstore").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not recorded:
        return None
    try:
        origin = json.loads(recorded)
    except ValueError:
        return None
    url = urlparse(str(origin.get("url", "")))
    if url.scheme != "file":
        return None
    editable = bool((origin.get("dir_info") or {}).get("editable"))
    return unquote(url.path), editable


def install_extra(extra: str) -> str:
    """The pip command that adds ``extra`` (``cli``, ``testing``, ...) to this docstore."""
    origin = _origin()
    if origin is None:
        return f"pip install 'docstore[{extra}]'"
    path, editable = origin
    return f"pip install {'-e ' if editable else ''}'{path}[{extra}]'"
