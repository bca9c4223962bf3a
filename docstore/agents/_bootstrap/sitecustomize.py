"""Run by every Python process ``docstore aurite`` starts (this folder is put first on
their PYTHONPATH, as opentelemetry-instrument does): aurite's storage goes to docstore
before the framework builds its kernel, in uvicorn's reloaded workers too.

Not a package module: it is imported as ``sitecustomize``. Another ``sitecustomize`` further
along the path still runs after it.
"""

from __future__ import annotations

import importlib
import os
import sys


def _chain() -> None:
    # The sitecustomize this one shadows (a distribution's, a virtualenv's) runs too.
    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    saved, sys.path[:] = sys.path[:], path
    mine = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if mine is not None:
            sys.modules["sitecustomize"] = mine


def _install() -> None:
    try:
        from docstore.agents.aurite import _install_from_environment

        _install_from_environment()
    except Exception as exc:
        # site.py would print one line and go on, and the framework would then keep its
        # data on its own storage: stop instead, saying why.
        print(f"docstore aurite: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


_chain()
_install()
