"""The agents layer's own SQL, I/O-free: its DDL (agents.sql: the ``messages`` view, the
indexes of the framework's lists and the triggers that keep their totals), and the
statements that read those lists a page at a time through them, and fold the totals'
deltas. The shells (:mod:`.storage_async`, :mod:`._history_async`) run
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
    "CLEANUP_FOLD_AT",
    "COUNT_TRIGGERS",
    "DDL_STATE",
    "FOLD",
    "FOLD_AT",
    "INDEX_STATE",
    "VACUUM_AFTER",
    "AgentStatement",
    "Page",
    "agent_ddl",
    "all_heads",
    "ddl_mark",
    "fold",
    "page_of",
    "qa_page",
    "sessions_page",
    "translate",
    "vacuum_deltas",
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


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_]\w*)?\$")


def _split(text: str) -> list[str]:
    """The statements of ``text`` (agents.sql itself, before the schema is put in): split
    at a ';' ending a line, but not inside a dollar-quoted body (a function's, a DO
    block's)."""
    chunks: list[str] = []
    start, tag = 0, None
    for found in re.finditer(_DOLLAR_TAG.pattern + r"|;\n", text):
        token = found.group(0)
        if token == ";\n":
            if tag is None:
                chunks.append(text[start : found.start()])
                start = found.end()
        elif tag is None:
            tag = token
        elif token == tag:
            tag = None
    chunks.append(text[start:])
    return chunks


def _safe_tags(stmt: str, schema: str) -> str:
    """``stmt`` with each dollar-quote tag that occurs in ``schema`` made longer until it
    does not: the name put in a body (a schema may hold a '$') cannot end it early."""
    for tag in sorted(set(_DOLLAR_TAG.findall(stmt))):
        safe = tag
        while safe in schema:
            safe = safe[:-1] + "_$"
        stmt = stmt.replace(tag, safe) if safe != tag else stmt
    return stmt


def agent_ddl(schema: str) -> list[AgentStatement]:
    """agents.sql bound to ``schema``, one statement each, then the comment that marks it
    done. Split before the name is put in, so that no name can move a statement's end."""
    values = {
        ':"schema"': sql.Identifier(schema).as_string(None),
        ":'schema'": sql.Literal(schema).as_string(None),
    }
    out: list[AgentStatement] = []
    for chunk in _split(_source()):
        lines = [line for line in chunk.splitlines() if not line.lstrip().startswith("--")]
        stmt = _safe_tags("\n".join(lines).strip(), schema)
        if not stmt:
            continue
        stmt = _PLACEHOLDER.sub(lambda m: values[m.group(0)], stmt)
        found = re.match(r"CREATE INDEX CONCURRENTLY IF NOT EXISTS (\w+)", stmt)
        out.append(AgentStatement(stmt, found.group(1) if found else None))
    out.append(
        AgentStatement(f"COMMENT ON VIEW {view_name(schema)} IS {sql.Literal(ddl_mark()).as_string(None)}")
    )
    return out


# Whether agents.sql ran to its end on this store: the view's mark, its indexes valid,
# and the list counts' triggers there and enabled (a store whose trigger was dropped or
# disabled is set up and counted again).
DDL_STATE = """
SELECT coalesce(obj_description(to_regclass(%(view)s), 'pg_class') = %(mark)s, false)
   AND (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND c.relname = ANY(%(indexes)s) AND i.indisvalid)
       = cardinality(%(indexes)s::text[])
   AND (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND c.relname = 'documents' AND t.tgname = ANY(%(triggers)s)
          AND t.tgenabled = 'O')
       = cardinality(%(triggers)s::text[])
"""

COUNT_TRIGGERS = ["list_count_insert", "list_count_update", "list_count_delete", "list_count_truncate"]
"""The triggers of agents.sql that keep the lists' totals."""

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

# One statement: the total, how many deltas it summed, and the page's rows (none when the
# offset is past the end; the total's row is there still). The page's keys are read in
# the order of a partial index of agents.sql ({order} backwards) with {where} matching
# its leading columns, and only those heads are read: the cost is the page's (plus the
# offset skipped over the index). {total} is the total: the group's row of list_counts
# and its deltas not folded yet (agents.sql), in the page's own snapshot, or, for a
# filter no group counts, an index count of the matching live heads.
_PAGE = """
SELECT c.total, c.pending, p.name, p.data::text, p.items, p.created_at, p.updated_at
FROM ({total}) c
LEFT JOIN LATERAL (
    SELECT d.name, d.data, d.version - d.live_from + 1 AS items, d.created_at, d.updated_at
    FROM (SELECT name FROM {s}.documents WHERE kind = {kind} AND NOT deleted {where}
          ORDER BY {order} DESC, name DESC LIMIT %(limit)s OFFSET %(offset)s) k
    JOIN {s}.documents d ON d.kind = {kind} AND d.name = k.name
) p ON true
ORDER BY p.{order} DESC, p.name DESC
"""

_COUNTED = """
SELECT coalesce((SELECT n FROM {s}.list_counts WHERE kind = {kind} AND key = {key}), 0)
       + coalesce(sum(n), 0) AS total, count(*) AS pending
FROM {s}.list_count_deltas WHERE kind = {kind} AND key = {key}
"""

_COUNTED_BY_SCAN = (
    "SELECT count(*) AS total, 0 AS pending FROM {s}.documents WHERE kind = {kind} AND NOT deleted {where}"
)

FOLD_AT = 1000
"""Deltas of a list's total past which the list folds them (:data:`FOLD`) after reading."""

# The deltas into list_counts, each summed once: the DELETE takes the rows committed when
# it starts (a writer's later rows stay for the next fold; a row another fold took first
# is skipped), and its transaction adds them to the counts, so a reader sees them either
# in the deltas or in the counts. One fold at a time (the rest skip it), so two never
# wait on each other's rows. With no more than %(least)s deltas it folds none and
# writes nothing (no commit to flush).
FOLD = """
WITH moved AS (
    DELETE FROM {s}.list_count_deltas
    WHERE (SELECT count(*) > %(least)s FROM {s}.list_count_deltas)
      AND (SELECT pg_try_advisory_xact_lock(hashtextextended(%(lock)s, 0)))
    RETURNING kind, key, n
), folded AS (
    INSERT INTO {s}.list_counts AS c (kind, key, n)
    SELECT kind, key, sum(n)::bigint FROM moved GROUP BY kind, key
    ON CONFLICT (kind, key) DO UPDATE SET n = c.n + excluded.n
)
SELECT count(*) FROM moved
"""

# The expressions of conversation_by_name_idx (agents.sql), spelled as there.
_BY_NAME = (
    "AND data ->> 'name' = %(name)s "
    "AND (CASE WHEN data ->> 'result_type' = 'workflow' THEN 1 ELSE 0 END) = %(workflow)s"
)


@dataclass(frozen=True, slots=True)
class Page:
    """A page of heads (name, data as a dict, live items, created_at, updated_at), the
    total, and how many unfolded deltas the total summed."""

    rows: list[tuple[str, dict[str, Any], int, datetime, datetime]]
    total: int
    pending: int = 0


def _check_window(limit: Any, offset: Any) -> None:
    for label, number in (("limit", limit), ("offset", offset)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ValueError(f"{label} must be a non-negative int, not {number!r}")


def _statement(schema: str, kind: str, order: str, where: str, key: str | None) -> sql.Composed:
    """The page statement; ``key``: the SQL of the counted group's key, or None to count."""
    total = _COUNTED_BY_SCAN if key is None else _COUNTED.replace("{key}", key)
    text = _PAGE.replace("{total}", total).replace("{where}", where).replace("{order}", order)
    return sql.SQL(text).format(s=sql.Identifier(schema), kind=sql.Literal(kind))


def sessions_page(
    schema: str,
    agent_name: str | None,
    workflow_name: str | None,
    limit: int,
    offset: int,
    counted: bool = True,
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement of a page of ``get_sessions_list``: a workflow's runs, an agent's
    own runs (not workflows), or every session; newest first. ``counted=False``: the
    total counted from the heads (a store whose agents.sql predates the counts)."""
    _check_window(limit, offset)
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = ""
    key: str | None = "''"
    name = workflow_name or agent_name
    if name:
        workflow = 1 if workflow_name else 0
        where, params["name"], params["workflow"] = _BY_NAME, name, workflow
        # A group per name (agents.sql's list_count_keys); a name that is no string is
        # compared as the filter compares it, by a count.
        key = ("'w'" if workflow else "'a'") + " || %(name)s::text" if isinstance(name, str) else None
    return _statement(schema, CONVERSATION, "updated_at", where, key if counted else None), params


def qa_page(
    schema: str, match: Mapping[str, Any], limit: int, offset: int, counted: bool = True
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement of a page of ``get_qa_results_list``, newest first; ``match``: the
    keys the results must hold (containment); ``counted`` as for :func:`sessions_page`."""
    _check_window(limit, offset)
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = ""
    key: str | None = "''"
    if match:
        where, params["match"] = "AND data @> %(match)s::jsonb", orjson.dumps(dict(match)).decode()
        evaluation, component = match.get("evaluation_config_id"), match.get("component_type")
        params["evaluation"], params["component"] = evaluation, component
        strings = all(isinstance(v, str) for v in match.values())
        if not strings or set(match) - {"evaluation_config_id", "component_type"}:
            key = None  # no group counts it
        elif evaluation is not None and component is not None:
            key = "'b' || jsonb_build_array(%(evaluation)s::text, %(component)s::text)::text"
        elif evaluation is not None:
            key = "'e' || %(evaluation)s::text"
        else:
            key = "'c' || %(component)s::text"
    return _statement(schema, QA_RESULT, "created_at", where, key if counted else None), params


VACUUM_AFTER = 10 * FOLD_AT
"""Deltas folded at once past which the fold's caller vacuums their table: a bulk hide
(a first cleanup of a million sessions) leaves that many dead rows, which every total
would scan until autovacuum came by."""


def vacuum_deltas(schema: str) -> sql.Composed:
    """VACUUM of the deltas' table (run outside a transaction; a role that does not own
    it gets a warning, not an error, and leaves it to autovacuum)."""
    return sql.SQL("VACUUM {}.list_count_deltas").format(sql.Identifier(schema))


CLEANUP_FOLD_AT = 100
"""Deltas past which cleanup_old_sessions folds them: fewer cost a total next to nothing,
and a fold of a few would add a commit to every cleanup (aurite cleans up before every
list)."""


def fold(schema: str, least: int = 0) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement folding the lists' deltas into their counts (:data:`FOLD`) when there
    are more than ``least``; its one row: how many it folded (0 when another fold runs)."""
    lock = "docstore.agents.list_counts:" + schema
    return sql.SQL(FOLD).format(s=sql.Identifier(schema)), {"lock": lock, "least": least}


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
    pending = int(rows[0][1]) if rows else 0
    heads = [
        (name, orjson.loads(data), int(items), created, updated)
        for _, _, name, data, items, created, updated in rows
        if name is not None
    ]
    return Page(heads, total, pending)
