"""Which kinds the command knows, and how.

1. The agent framework's kinds (``docstore.agents.agent_registry()``: agent, llm,
   mcp_server, the workflows, conversation, qa_result), with their models and upgraders:
   validated like in an app.
2. A registry of the user's own, from ``--kinds module:attribute`` (or ``DOCSTORE_KINDS``):
   the attribute is a :class:`~docstore.Registry`, or a callable returning one. Its kinds
   override the framework's.
3. Any other kind found in the store (or written by ``put --new-kind`` for the first
   time) is registered on the fly with a permissive model (any JSON value), the mode it is stored
   in and its highest stored schema_version, so it can be read, listed, diffed and
   exported without its Python model; nothing about it is validated beyond JSON.

Any other kind is refused, with the nearest known one: ``put agnet ...`` is a typo.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from psycopg import sql
from pydantic import JsonValue, TypeAdapter

from ..agents import agent_registry
from ..kinds import Mode, Registry, check_key
from ..store import DocStore
from ._errors import CliError
from ._query import raw

__all__ = ["ensure_kind", "known_kinds", "registry", "unknown_kind"]

_ANY_JSON: TypeAdapter[Any] = TypeAdapter(JsonValue)


def registry(extra: str | None) -> Registry:
    """The framework's kinds (docstore.agents.agent_registry), then the user's
    (``module:attribute``) over them."""
    kinds = agent_registry()
    if extra:
        for kind in _load(extra):
            kinds.add(kind)
    return kinds


def _load(target: str) -> Registry:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise CliError(f"--kinds must be module:attribute, not {target!r}")
    try:
        value: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise CliError(f"--kinds {target}: {exc}") from None
    if callable(value) and not isinstance(value, Registry):
        value = value()
    if not isinstance(value, Registry):
        raise CliError(f"--kinds {target} is a {type(value).__name__}, not a docstore.Registry")
    return value


def _identity(data: dict[str, Any]) -> dict[str, Any]:
    return data


def ensure_kind(store: DocStore, kind: str, *, new: bool = False) -> None:
    """Make ``kind`` usable: a registered kind as it is; a kind found in the store
    registered permissively, in the mode and schema version it is stored in.

    Any other kind is a typo until proven otherwise: refused with the nearest known kind,
    unless ``new`` (``put --new-kind``), which registers it to be written for the first time.
    """
    if kind in store.kinds:
        return
    check_key(kind)
    query = sql.SQL(
        "SELECT mode, (SELECT max(schema_version) FROM {s}.versions WHERE kind = %(k)s), "
        "max(schema_version) FROM {s}.documents WHERE kind = %(k)s GROUP BY mode"
    ).format(s=sql.Identifier(store.schema))
    rows = raw(store, query, {"k": kind})
    if not rows and not new:
        raise CliError(unknown_kind(store, kind))
    mode: Mode = "log" if rows and rows[0][0] == "l" else "snapshot"
    top = max([1, *(int(v) for row in rows for v in row[1:] if v is not None)])
    upgraders = {step: _identity for step in range(1, top)}
    store.register(kind, _ANY_JSON, mode=mode, schema_version=top, upgraders=upgraders, meta=None)


def known_kinds(store: DocStore) -> list[str]:
    """The registered kinds and the kinds found in the store, sorted."""
    stored = raw(
        store,
        sql.SQL("SELECT DISTINCT kind FROM {s}.documents WHERE left(kind, 1) <> '_'").format(
            s=sql.Identifier(store.schema)
        ),
    )
    return sorted({*(k.name for k in store.kinds), *(row[0] for row in stored)})


def unknown_kind(store: DocStore, kind: str) -> str:
    """Why ``kind`` is refused, with the nearest known kind."""
    known = known_kinds(store)
    close = difflib.get_close_matches(kind, known, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]!r}?" if close else ""
    return (
        f"unknown kind {kind!r}{hint} (known kinds: {', '.join(known)}; `put --new-kind` writes a new kind)"
    )
