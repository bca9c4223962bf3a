"""Stores as earlier releases left them, made from the frozen copies of their schema.sql
in tests/layouts/ (see its README), and the catalog of a store, to compare layouts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

LAYOUTS_DIR = Path(__file__).resolve().parent / "layouts"


@dataclass(frozen=True)
class Layout:
    """A store's history: the frozen schema.sql copies run on it, oldest first."""

    name: str
    files: tuple[str, ...]
    partitions: int | None = None
    ddl_version: int = 1

    @property
    def has_changes(self) -> bool:
        return any('CREATE TABLE IF NOT EXISTS :"schema".changes' in path_text(f) for f in self.files)

    @property
    def first_release_indexes(self) -> bool:
        return any("CREATE INDEX IF NOT EXISTS documents_data_gin_idx" in path_text(f) for f in self.files)


def path_text(file: str) -> str:
    return (LAYOUTS_DIR / file).read_text(encoding="utf-8")


LAYOUTS = [
    Layout("first_release", ("v1_first_release.sql",)),
    # A store made while the feed had its trigger, kept by the next release's init_schema.
    Layout("before_barrier", ("v1_feed_trigger.sql", "v1_before_barrier.sql")),
    Layout("last_release", ("v1_last_release.sql",)),
    Layout("last_release_partitioned", ("v1_last_release.sql",), partitions=2),
    Layout("today", ("v1_today.sql",)),
    Layout("today_partitioned", ("v1_today.sql",), partitions=2),
    # DDL version 2: the messages view in the core's schema.sql, kept by the upgrade to 3.
    Layout("v2", ("v2.sql",), ddl_version=2),
    Layout("v2_partitioned", ("v2.sql",), partitions=2, ddl_version=2),
]


def bind(text: str, schema: str) -> str:
    """A frozen schema.sql bound to ``schema``, as that release's init_schema did."""
    values = {
        ':"schema"': sql.Identifier(schema).as_string(None),
        ":'schema'": sql.Literal(schema).as_string(None),
    }
    return re.sub(r""":"schema"|:'schema'""", lambda m: values[m.group(0)], text)


def partitioned_versions(ddl: str, schema: str, partitions: int) -> str:
    """That release's partitioned_versions(): its own versions table, hash-partitioned."""
    quoted = sql.Identifier(schema).as_string(None)
    start = ddl.index(f"CREATE TABLE IF NOT EXISTS {quoted}.versions (")
    end = ddl.index("\n);", start) + 2
    parts = [f"CREATE SCHEMA IF NOT EXISTS {quoted}", ddl[start:end] + " PARTITION BY HASH (kind, name)"]
    for i in range(partitions):
        parts.append(
            f"CREATE TABLE IF NOT EXISTS {quoted}.versions_p{i} PARTITION OF {quoted}.versions "
            f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})"
        )
    return ";\n".join(parts) + ";"


def create(conn: psycopg.Connection[Any], layout: Layout, schema: str) -> None:
    """Make ``schema`` the store ``layout``'s releases left behind (empty)."""
    for i, file in enumerate(layout.files):
        ddl = bind(path_text(file), schema)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["docstore:" + schema])
            if i == 0 and layout.partitions:
                conn.execute(partitioned_versions(ddl, schema, layout.partitions).encode())
            conn.execute(ddl.encode())


def copy_rows(conn: psycopg.Connection[Any], source: str, target: str, changes: bool) -> None:
    """The rows of store ``source`` (all but its DDL record) into store ``target``: what
    the current release writes, in an older layout (the tables' columns never changed)."""
    s, t = sql.Identifier(source), sql.Identifier(target)
    docs = "kind, name, mode, version, live_from, schema_version, data, deleted, created_at, updated_at"
    vers = "kind, name, version, schema_version, op, data, author, written_at"
    conn.execute(
        sql.SQL(
            "INSERT INTO {t}.documents ({c}) SELECT {c} FROM {s}.documents "
            "WHERE (kind, name) <> ('_docstore', 'schema')"
        ).format(t=t, s=s, c=sql.SQL(docs))
    )
    conn.execute(
        sql.SQL("INSERT INTO {t}.versions ({c}) SELECT {c} FROM {s}.versions").format(
            t=t, s=s, c=sql.SQL(vers)
        )
    )
    if changes:
        conn.execute(
            sql.SQL("INSERT INTO {t}.changes OVERRIDING SYSTEM VALUE SELECT * FROM {s}.changes").format(
                t=t, s=s
            )
        )


def dump(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's tables but its DDL record, in a stable order."""
    s = sql.Identifier(schema)
    found = {
        "documents": conn.execute(
            sql.SQL(
                "SELECT * FROM {}.documents WHERE (kind, name) <> ('_docstore', 'schema') ORDER BY kind, name"
            ).format(s)
        ).fetchall(),
        "versions": conn.execute(
            sql.SQL("SELECT * FROM {}.versions ORDER BY kind, name, version").format(s)
        ).fetchall(),
    }
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{s.as_string(None)}.changes"]).fetchone()
    if exists and exists[0]:
        found["changes"] = conn.execute(
            sql.SQL("SELECT * FROM {}.changes ORDER BY xid, seq").format(s)
        ).fetchall()
    return found


def catalog(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """A store's layout as the catalog has it, with the schema's name taken out and the
    names of partitions' indexes too (PostgreSQL names those it makes itself)."""
    quoted = sql.Identifier(schema).as_string(None)

    def rows(query: str) -> list[tuple[Any, ...]]:
        return [
            tuple(
                str(v).replace(quoted + ".", "S.").replace(schema, "S") if v is not None else None for v in r
            )
            for r in conn.execute(query, {"schema": schema}).fetchall()
        ]

    return {
        "columns": rows(
            """SELECT c.relname, c.relkind::text, a.attnum, a.attname,
                      format_type(a.atttypid, a.atttypmod), a.attnotnull,
                      pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attcompression::text
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
               WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
               ORDER BY 1, 3"""
        ),
        "constraints": rows(
            """SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
               FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %(schema)s ORDER BY 1, 2"""
        ),
        "indexes": sorted(
            rows(
                """SELECT t.relname,
                          CASE WHEN t.relispartition THEN '' ELSE c.relname END,
                          regexp_replace(pg_get_indexdef(i.indexrelid), '^(CREATE \\w* ?INDEX) \\S+ ON',
                                         '\\1 ON'),
                          i.indisvalid
                   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   JOIN pg_class t ON t.oid = i.indrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = %(schema)s"""
            )
        ),
        "views": rows(
            """SELECT c.relname, pg_get_viewdef(c.oid), c.reloptions::text
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %(schema)s AND c.relkind = 'v' ORDER BY 1"""
        ),
        "triggers": rows(
            """SELECT c.relname, g.tgname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %(schema)s AND NOT g.tgisinternal ORDER BY 1, 2"""
        ),
        "functions": rows(
            """SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = %(schema)s ORDER BY 1"""
        ),
    }


FIRST_RELEASE_INDEXES = [
    (
        "documents",
        "documents_data_gin_idx",
        "CREATE INDEX ON S.documents USING gin (data jsonb_path_ops)",
        "True",
    ),
    (
        "documents",
        "documents_kind_updated_idx",
        "CREATE INDEX ON S.documents USING btree (kind, updated_at)",
        "True",
    ),
]
"""The two indexes of every head the first release made, which an upgrade keeps."""
