"""The agents layer's own SQL, I/O-free: its DDL (agents.sql: the ``messages`` view and
the indexes of the framework's lists), and the statements that read those lists a page
at a time through them. The shells (:mod:`.storage_async`, :mod:`._history_async`) run
them on the store's pool.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import orjson
import psycopg
from psycopg import errors as pge
from psycopg import sql

from docstore.errors import DatabaseUnavailable, DocStoreError, SchemaMissing

from ._sessions import QA_RESULT
from ._settings import CONVERSATION

__all__ = [
    "DDL_STATE",
    "INDEX_STATE",
    "AgentStatement",
    "Page",
    "agent_ddl",
    "all_heads",
    "ddl_mark",
    "page_of",
    "qa_page",
    "sessions_page",
    "translate",
    "view_name",
]

_PLACEHOLDER = re.compile(r""":"schema"|:'schema'""")


@dataclass(frozen=True, slots=True)
class AgentStatement:
    """One statement of agents.sql bound to a schema; ``index``: the name of the index
    it builds CONCURRENTLY (run outside any transaction), else None."""

    text: str
    index: str | None = None


@cache
def _source() -> str:
    return resources.files("docstore.agents").joinpath("agents.sql").read_text(encoding="utf-8")


def ddl_mark() -> str:
    """What the ``messages`` view's comment holds once this release's agents.sql ran to
    its end: init_db() runs nothing more on a store that has it."""
    return "docstore.agents " + hashlib.sha256(_source().encode()).hexdigest()[:16]


def view_name(schema: str) -> str:
    """The ``messages`` view's qualified name, quoted."""
    return sql.Identifier(schema).as_string(None) + ".messages"


def agent_ddl(schema: str) -> list[AgentStatement]:
    """agents.sql bound to ``schema``, one statement each, then the comment that marks it done."""
    values = {
        ':"schema"': sql.Identifier(schema).as_string(None),
        ":'schema'": sql.Literal(schema).as_string(None),
    }
    text = _PLACEHOLDER.sub(lambda m: values[m.group(0)], _source())
    out: list[AgentStatement] = []
    for chunk in text.split(";\n"):
        lines = [line for line in chunk.splitlines() if not line.lstrip().startswith("--")]
        stmt = "\n".join(lines).strip()
        if not stmt:
            continue
        found = re.match(r"CREATE INDEX CONCURRENTLY IF NOT EXISTS (\w+)", stmt)
        out.append(AgentStatement(stmt, found.group(1) if found else None))
    out.append(
        AgentStatement(f"COMMENT ON VIEW {view_name(schema)} IS {sql.Literal(ddl_mark()).as_string(None)}")
    )
    return out


# Whether agents.sql ran to its end on this store: the view's mark, and its indexes valid.
DDL_STATE = """
SELECT coalesce(obj_description(to_regclass(%(view)s), 'pg_class') = %(mark)s, false)
   AND (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND c.relname = ANY(%(indexes)s) AND i.indisvalid)
       = cardinality(%(indexes)s::text[])
"""

# An index: whether it is valid, and whether another backend builds it now (an invalid
# one nobody builds was left by a build cut short: dropped and built again).
INDEX_STATE = """
SELECT i.indisvalid,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
               WHERE p.relid = i.indrelid AND p.index_relid IN (0, c.oid) AND p.pid <> pg_backend_pid())
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_index i ON i.indexrelid = c.oid
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
"""


def translate(schema: str, what: str, exc: psycopg.Error) -> DocStoreError:
    """psycopg's error of one of the layer's own statements as docstore's."""
    if isinstance(exc, pge.UndefinedTable | pge.InvalidSchemaName):
        return SchemaMissing(
            f"schema {schema!r} holds no docstore store ({what}): run StorageManager.init_db() "
            "(or `docstore init`)"
        )
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable(f"schema {schema!r}: {what}: {str(exc).strip()}")
    return DocStoreError(f"schema {schema!r}: {what}: {str(exc).strip()}")


# --- the lists, a page at a time ----------------------------------------------------

# One statement: the total, and the page's rows (none when the offset is past the end;
# the total's row is there still). The page's keys are read in the order of a partial
# index of agents.sql ({order} backwards) with {where} matching its leading columns, and
# only those heads are read: the cost is the page's (plus the offset skipped over the
# index), and the total an index count of the matching live heads.
_PAGE = """
SELECT c.total, p.name, p.data::text, p.items, p.created_at, p.updated_at
FROM (SELECT count(*) AS total FROM {s}.documents WHERE kind = {kind} AND NOT deleted {where}) c
LEFT JOIN LATERAL (
    SELECT d.name, d.data, d.version - d.live_from + 1 AS items, d.created_at, d.updated_at
    FROM (SELECT name FROM {s}.documents WHERE kind = {kind} AND NOT deleted {where}
          ORDER BY {order} DESC, name DESC LIMIT %(limit)s OFFSET %(offset)s) k
    JOIN {s}.documents d ON d.kind = {kind} AND d.name = k.name
) p ON true
ORDER BY p.{order} DESC, p.name DESC
"""

# The expressions of conversation_by_name_idx (agents.sql), spelled as there.
_BY_NAME = (
    "AND data ->> 'name' = %(name)s "
    "AND (CASE WHEN data ->> 'result_type' = 'workflow' THEN 1 ELSE 0 END) = %(workflow)s"
)


@dataclass(frozen=True, slots=True)
class Page:
    """A page of heads (name, data as a dict, live items, created_at, updated_at) and the total."""

    rows: list[tuple[str, dict[str, Any], int, datetime, datetime]]
    total: int


def _check_window(limit: Any, offset: Any) -> None:
    for label, number in (("limit", limit), ("offset", offset)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ValueError(f"{label} must be a non-negative int, not {number!r}")


def _statement(schema: str, kind: str, order: str, where: str) -> sql.Composed:
    text = _PAGE.replace("{where}", where).replace("{order}", order)
    return sql.SQL(text).format(s=sql.Identifier(schema), kind=sql.Literal(kind))


def sessions_page(
    schema: str, agent_name: str | None, workflow_name: str | None, limit: int, offset: int
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement of a page of ``get_sessions_list``: a workflow's runs, an agent's
    own runs (not workflows), or every session; newest first."""
    _check_window(limit, offset)
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = ""
    if workflow_name:
        where, params["name"], params["workflow"] = _BY_NAME, workflow_name, 1
    elif agent_name:
        where, params["name"], params["workflow"] = _BY_NAME, agent_name, 0
    return _statement(schema, CONVERSATION, "updated_at", where), params


def qa_page(
    schema: str, match: Mapping[str, str], limit: int, offset: int
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement of a page of ``get_qa_results_list``, newest first; ``match``: the
    keys the results must hold (containment)."""
    _check_window(limit, offset)
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = ""
    if match:
        where, params["match"] = "AND data @> %(match)s::jsonb", orjson.dumps(dict(match)).decode()
    return _statement(schema, QA_RESULT, "created_at", where), params


# Every live config of the given kinds, in one statement: load_all_configs and
# load_index_from_db, in each kind's list() order (by name).
ALL_HEADS = """
SELECT kind, name, version, schema_version, data::text FROM {s}.documents
WHERE kind = ANY(%(kinds)s) AND NOT deleted
ORDER BY kind, name
"""


def all_heads(schema: str, kinds: list[str]) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement reading every live head of ``kinds``."""
    return sql.SQL(ALL_HEADS).format(s=sql.Identifier(schema)), {"kinds": kinds}


def page_of(rows: list[tuple[Any, ...]]) -> Page:
    """The rows of a page statement as a :class:`Page`."""
    total = int(rows[0][0]) if rows else 0
    heads = [
        (name, orjson.loads(data), int(items), created, updated)
        for _, name, data, items, created, updated in rows
        if name is not None
    ]
    return Page(heads, total)
