"""Run by every Python process ``docstore aurite`` starts (this folder is put first on
their PYTHONPATH, as opentelemetry-instrument does), so that the framework's storage is
docstore's in each of them, uvicorn's reloaded workers included.

Nothing is imported here: a hook waits for the framework's package to be imported and
calls :func:`docstore.agents.aurite.install` right after it, so a Python process that
never imports aurite (an MCP server the agent starts, say, even another interpreter
without docstore) pays nothing. Not a package module: it is imported as
``sitecustomize``; another ``sitecustomize`` further along the path runs after it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Sequence
from typing import Any

_INSTALL_VARIABLE = "DOCSTORE_AURITE_INSTALL"


def _say(text: str) -> None:
    print(f"docstore aurite: {text}", file=sys.stderr, flush=True)


def _install() -> None:
    try:
        from docstore.agents.aurite import install

        install()
    except Exception as exc:
        # Going on would leave the framework on its own storage without a word.
        _say(f"{type(exc).__name__}: {exc}")
        raise SystemExit(2) from None


class _InstallAfter(importlib.abc.Loader):
    """The framework's own loader, and install() once its package has run."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        created: types.ModuleType | None = self._loader.create_module(spec)
        return created

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        _install()

    def __getattr__(self, name: str) -> Any:
        # importlib.resources and friends ask the loader for more (resource readers).
        return getattr(self._loader, name)


class _AfterAurite(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of the framework's top package."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "aurite":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("aurite")
        if spec is not None and spec.loader is not None:
            spec.loader = _InstallAfter(spec.loader)
        return spec


def _chain() -> None:
    # The sitecustomize this one shadows (a distribution's, a virtualenv's) runs too.
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if os.path.abspath(p or os.curdir) != here]
    mine = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as exc:
        if exc.name != "sitecustomize":
            _say(f"the sitecustomize this one shadows failed: {exc}")
    except Exception as exc:
        _say(f"the sitecustomize this one shadows failed: {type(exc).__name__}: {exc}")
    finally:
        sys.path[:] = saved
        if mine is not None:
            sys.modules["sitecustomize"] = mine


if os.environ.get(_INSTALL_VARIABLE) == "1":
    if "aurite" in sys.modules:
        _install()
    else:
        sys.meta_path.insert(0, _AfterAurite())
_chain()
