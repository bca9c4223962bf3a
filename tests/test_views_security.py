"""The analysts' views are security barriers: a reader with only SELECT on them cannot see,
through a cheap function of its own that leaks its arguments, the rows they filter out
(cleared messages, deleted documents, reserved kinds)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import BaseModel

from docstore import DocStore
from docstore.agents import StorageManager


class Message(BaseModel):
    role: str
    content: str


class Config(BaseModel):
    secret: str


LEAK = """
CREATE FUNCTION pg_temp.leak(value text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN RAISE NOTICE 'leak:%', value; RETURN true; END $$"""


@pytest.mark.parametrize("planner", ["default", "no_nestloop", "no_hashjoin"])
def test_a_reader_with_a_leaky_function_sees_only_what_the_views_show(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore], planner: str
) -> None:
    store = docstore_factory()
    store.register("conversation", Message, mode="log")
    store.register("agent", Config)
    StorageManager(store).init_db()  # the messages view
    store.append("conversation", "cleared", [{"role": "user", "content": "HIDDEN-cleared"}])
    store.clear("conversation", "cleared")
    store.append("conversation", "cleared", [{"role": "user", "content": "shown-after"}])
    store.append("conversation", "gone", [{"role": "user", "content": "HIDDEN-deleted-log"}])
    store.delete("conversation", "gone")
    store.append("conversation", "live", [{"role": "user", "content": "shown-live"}])
    store.rewrite("conversation", "live", [{"role": "user", "content": "shown-rewritten"}])
    store.put("agent", "HIDDEN-deleted-doc", {"secret": "HIDDEN-deleted-value"})
    store.delete("agent", "HIDDEN-deleted-doc")
    store.put("agent", "kept", {"secret": "shown-kept"})
    with store.pool.connection() as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.documents (kind, name, version, data) "
                "VALUES ('_reserved', 'HIDDEN-reserved', 1, '{{}}')"
            ).format(sql.Identifier(store.schema))
        )
    role = f"i13_reader_{secrets.token_hex(4)}"
    schema = sql.Identifier(store.schema)
    with psycopg.connect(docstore_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, sql.Identifier(role)))
        admin.execute(
            sql.SQL("GRANT SELECT ON {}.current_documents, {}.messages TO {}").format(
                schema, schema, sql.Identifier(role)
            )
        )
    notices: list[str] = []
    try:
        info = psycopg.conninfo.conninfo_to_dict(docstore_dsn)
        info["user"] = role
        with psycopg.connect(**info, autocommit=True) as reader:  # type: ignore[arg-type]
            reader.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
            reader.execute(LEAK)
            if planner == "no_nestloop":
                reader.execute("SET enable_nestloop = off")
            elif planner == "no_hashjoin":
                reader.execute("SET enable_hashjoin = off; SET enable_mergejoin = off")
            rows: list[Any] = []
            for query in (
                "SELECT text FROM {}.messages WHERE pg_temp.leak(text)",
                "SELECT text FROM {}.messages WHERE pg_temp.leak(item::text)",
                "SELECT name FROM {}.current_documents WHERE pg_temp.leak(name)",
                "SELECT name FROM {}.current_documents WHERE pg_temp.leak(data::text)",
            ):
                rows += reader.execute(sql.SQL(query).format(schema)).fetchall()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(sql.SQL("SELECT 1 FROM {}.versions").format(schema))
    finally:
        with psycopg.connect(docstore_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert notices, "the leak function never ran"
    assert not [n for n in notices if "HIDDEN" in n], [n for n in notices if "HIDDEN" in n]
    assert {r[0] for r in rows} >= {"shown-after", "shown-rewritten", "kept"}
