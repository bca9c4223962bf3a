"""Hostile and odd input: what runs once, not once per store shell: values of 10 MB
(the codec and the SQL are the same for both shells), and a schema name full of quotes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from psycopg import sql
from test_hostile_input import AnyDoc, Msg

from docstore import DocStore


@pytest.mark.slow
def test_a_10_mb_document_round_trips(docstore_store: DocStore) -> None:
    s = docstore_store
    s.register("doc", AnyDoc)
    value = {
        "text": "x" * (5 * 1024 * 1024) + "😀",
        "items": [{"i": i, "s": "é" * 40} for i in range(50_000)],
    }
    s.put("doc", "big", value)
    assert s.get("doc", "big").data == value
    # And the unchanged re-put writes nothing, even at that size.
    assert s.put("doc", "big", value).version == 1


@pytest.mark.slow
def test_a_10_mb_conversation_item_round_trips(docstore_store: DocStore) -> None:
    s = docstore_store
    s.register("chat", Msg, mode="log")
    content = "long message " * 800_000
    assert s.append("chat", "c", [{"role": "user", "content": content}]) == 1
    assert s.read("chat", "c")[0].content == content


def test_a_schema_name_full_of_quotes_is_quoted_not_executed(
    docstore_factory: Callable[..., DocStore],
) -> None:
    schema = 'evil"; DROP TABLE x; --'
    store = docstore_factory(schema=schema)
    store.register("doc", AnyDoc)
    store.put("doc", "a", {"v": 1})
    assert store.get("doc", "a").data == {"v": 1}
    with store.pool.connection() as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.documents WHERE kind = 'doc'").format(sql.Identifier(schema))
        ).fetchone()
    assert row is not None and row[0] == 1
