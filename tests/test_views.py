"""The analysts' views (schema.sql's, and the agents layer's `messages` of
docstore/agents/agents.sql), and the read-only role recipe of docs/analytics.md."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors as pge
from psycopg import sql
from test_analytics import doc_blocks, for_schema

from docstore import DocStore
from docstore._sql import schema_ddl
from docstore.agents import StorageManager
from docstore.agents.messages import (
    MESSAGE_ADAPTER,
    ConversationMeta,
    message_text,
    message_tool_names,
)

AnyDict = dict[str, Any]

SHAPES: list[AnyDict] = [
    {"role": "user", "content": "plain string"},
    {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "a", "name": "search", "input": {}},
            {"type": "tool_use", "id": "b", "name": "fetch", "input": {"url": "x"}},
        ],
        "usage": {"input_tokens": 7, "output_tokens": 3},
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "a", "content": "found"},
            {"type": "tool_result", "tool_use_id": "b", "content": "404", "is_error": True},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
            {"type": "text", "text": "what is this?"},
        ],
    },
    {"role": "system", "content": "You are terse."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 2},
    },
    {"role": "tool", "tool_call_id": "c1", "content": "result"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "see"},
            {"type": "image_url", "image_url": {"url": "https://x/z.png"}},
        ],
    },
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
]


@pytest.fixture
def s(docstore_store: DocStore) -> DocStore:
    store = docstore_store
    store.register("agent", AnyDict)
    store.register("conversation", MESSAGE_ADAPTER, mode="log", meta=ConversationMeta)
    StorageManager(store).init_db()  # the messages view is the agents layer's
    return store


def rows(store: DocStore, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with store.pool.connection() as conn:
        found: list[tuple[Any, ...]] = conn.execute(
            query.replace("{s}", f'"{store.schema}"'), params
        ).fetchall()
        return found


def test_current_documents_lists_live_heads_of_every_kind_but_not_reserved_ones(s: DocStore) -> None:
    s.put("agent", "a", {"v": 1})
    s.put("agent", "a", {"v": 2})
    s.put("agent", "gone", {"v": 1})
    s.delete("agent", "gone")
    s.append("conversation", "c/1", SHAPES[:3], meta={"agent_name": "c", "session_id": "1"})
    s.rewrite("conversation", "c/1", SHAPES[:2])
    got = rows(s, "SELECT kind, name, mode, version, items FROM {s}.current_documents ORDER BY kind, name")
    assert got == [("agent", "a", "snapshot", 2, None), ("conversation", "c/1", "log", 5, 2)]


def test_messages_flattens_every_shape_like_the_python_helpers(s: DocStore) -> None:
    s.append("conversation", "w/1", SHAPES, meta={"agent_name": "w", "session_id": "1"})
    got = rows(
        s,
        "SELECT agent_name, session_id, version, role, text, tool_names, tool_error, "
        "input_tokens, output_tokens, item FROM {s}.messages ORDER BY version",
    )
    assert len(got) == len(SHAPES)
    for shape, (agent, session, version, role, text, tools, error, tin, tout, item) in zip(
        SHAPES, got, strict=True
    ):
        message = MESSAGE_ADAPTER.validate_python(shape)
        assert (agent, session, role) == ("w", "1", shape["role"])
        assert text == message_text(message), version
        assert tools == message_tool_names(message), version
        assert error == (version == 4)
        usage = shape.get("usage", {})
        assert tin == usage.get("input_tokens", usage.get("prompt_tokens"))
        assert tout == usage.get("output_tokens", usage.get("completion_tokens"))
        assert MESSAGE_ADAPTER.validate_python(item) == message


def test_messages_leaves_out_retired_items_and_deleted_conversations(s: DocStore) -> None:
    meta = {"agent_name": "w", "session_id": "1"}
    s.append("conversation", "w/1", SHAPES[:4], meta=meta)
    s.rewrite("conversation", "w/1", [SHAPES[5]])
    s.append("conversation", "w/1", [SHAPES[0]])
    s.append("conversation", "w/2", SHAPES[:2], meta=meta)
    s.clear("conversation", "w/2")
    s.append("conversation", "w/3", SHAPES[:2], meta=meta)
    s.delete("conversation", "w/3")
    assert rows(s, "SELECT name, version, role FROM {s}.messages ORDER BY name, version") == [
        ("w/1", 5, "system"),
        ("w/1", 6, "user"),
    ]


def test_messages_shows_log_items_of_other_shapes_with_empty_columns_not_errors(s: DocStore) -> None:
    # The view knows the agents' message shapes (schema.sql's own section says so); a log
    # kind of any other shape still lists, with what the view cannot find left empty.
    s.register("events", Any, mode="log")
    items: list[Any] = [7, "text", None, [1, {"type": "text"}], {"content": {"type": "x"}, "tool_calls": 3}]
    s.append("events", "e", items, meta={})
    got = rows(
        s,
        "SELECT agent_name, role, text, tool_names, tool_error, input_tokens, output_tokens, item "
        "FROM {s}.messages WHERE kind = 'events' ORDER BY version",
    )
    assert got == [(None, None, "", [], False, None, None, item) for item in items]


def test_config_changes_is_an_audit_trail_of_who_changed_which_keys(s: DocStore) -> None:
    s.put("agent", "a", {"model": "m1", "temperature": 0.5, "tools": ["x"]}, author="ann")
    s.put("agent", "a", {"model": "m2", "temperature": 0.5, "tools": ["x"]}, author="bo")
    s.put("agent", "a", {"model": "m2", "tools": ["x", "y"], "top_p": 1}, author="cy")
    s.delete("agent", "a", author="di")
    s.revert("agent", "a", to_version=1, author="ed")
    s.append("conversation", "c/1", SHAPES[:1], meta={"agent_name": "c", "session_id": "1"})
    got = rows(
        s,
        "SELECT version, op, author, changed, changed_keys FROM {s}.config_changes "
        "ORDER BY kind, name, version",
    )
    assert got == [
        (1, "put", "ann", True, ["model", "temperature", "tools"]),
        (2, "put", "bo", True, ["model"]),
        (3, "put", "cy", True, ["temperature", "tools", "top_p"]),
        (4, "delete", "di", False, []),
        (5, "revert", "ed", True, ["model", "temperature", "tools", "top_p"]),
    ]
    ((changes,),) = rows(s, "SELECT changes FROM {s}.config_changes WHERE version = 3")
    assert changes == {
        "tools": {"old": ["x"], "new": ["x", "y"]},
        "top_p": {"old": None, "new": 1},
        "temperature": {"old": 0.5, "new": None},
    }


def test_config_changes_survives_pruned_history_and_non_object_values(s: DocStore) -> None:
    s.register("counter", int)
    for value in (1, 2, 3):
        s.put("counter", "n", value)
    s.prune_versions("counter", keep_last=2)
    got = rows(
        s,
        "SELECT version, changed, changed_keys FROM {s}.config_changes "
        "WHERE kind = 'counter' ORDER BY version",
    )
    assert got == [(2, True, []), (3, True, [])]


def test_views_are_replaced_in_place_when_init_schema_runs_again(s: DocStore) -> None:
    s.put("agent", "a", {"v": 1})
    assert s.init_schema() == s.init_schema()
    assert rows(s, "SELECT count(*) FROM {s}.current_documents") == [(1,)]


def test_the_read_only_role_of_the_docs_reads_the_views_and_nothing_else(
    s: DocStore, docstore_dsn: str
) -> None:
    s.put("agent", "a", {"v": 1})
    s.append("conversation", "c/1", SHAPES[:2], meta={"agent_name": "c", "session_id": "1"})
    role = f"docstore_reader_{uuid.uuid4().hex[:12]}"
    recipe = for_schema(doc_blocks()["read_only_role"], s.schema).replace("docstore_reader", role)
    schema = sql.Identifier(s.schema)
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        try:
            conn.execute(recipe)  # the doc's own SQL
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            for view, count in (("current_documents", 2), ("messages", 2), ("config_changes", 1)):
                got = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}.{}").format(schema, sql.Identifier(view))
                ).fetchone()
                assert got == (count,), view
            for table in ("documents", "versions"):
                with pytest.raises(pge.InsufficientPrivilege):
                    conn.execute(sql.SQL("SELECT 1 FROM {}.{}").format(schema, sql.Identifier(table)))
            with pytest.raises(pge.InsufficientPrivilege):
                conn.execute(sql.SQL("DELETE FROM {}.documents").format(schema))
            with pytest.raises(pge.InsufficientPrivilege):
                conn.execute(sql.SQL("CREATE TABLE {}.x ()").format(schema))
        finally:
            conn.execute("RESET ROLE")
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_the_core_schema_knows_nothing_of_agents_and_init_db_adds_their_view(
    docstore_factory: Any,
) -> None:
    # Its statements, not its comments (which may say where the agents' view went).
    ddl = "\n".join(line.split("--")[0] for line in schema_ddl().splitlines())
    for word in ("messages", "agent_name", "tool_use", "input_tokens", "conversation"):
        assert word not in ddl, word
    store = docstore_factory()
    exists = "SELECT to_regclass(%s) IS NOT NULL"
    assert rows(store, exists, f'"{store.schema}".messages') == [(False,)]
    StorageManager(store).init_db()
    assert rows(store, exists, f'"{store.schema}".messages') == [(True,)]
    indexes = rows(
        store,
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND i.indisvalid "
        "AND c.relname NOT LIKE '%%pkey' AND c.relname LIKE ANY(ARRAY['conversation%%', 'qa%%']) ORDER BY 1",
        store.schema,
    )
    assert indexes == [("conversation_by_name_idx",), ("conversation_recent_idx",), ("qa_result_recent_idx",)]
