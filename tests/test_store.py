# Generated from tests/test_store_async.py by .ci/async_to_sync.py: do not edit.
# Change tests/test_store_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""The store as a whole: the JSON limits of its values, on both store shells."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import Factory, count_rows

from docstore import DocStore, DocumentInvalid


@pytest.fixture
def store(docstore_factory: Factory) -> DocStore:
    """A fresh store of this module's shell (in place of conftest's ``store``)."""
    return docstore_factory()


@pytest.mark.parametrize(
    "value,path,problem",
    [
        ({"prompt": "a\x00b"}, "prompt", "\\u0000"),
        ({"deep": {"list": [1, "ok", "bad\x00"]}}, "deep.list.2", "\\u0000"),
        ({"t": math.nan}, "t", "NaN"),
        ({"t": [math.inf]}, "t.0", "Infinity"),
        ({"s": "\ud800"}, "s", "lone surrogate"),
        ({"k\x00": 1}, "k\\x00", "key"),
    ],
)
def test_values_jsonb_cannot_hold_are_refused_naming_the_path(
    store: DocStore, value: Any, path: str, problem: str
) -> None:
    store.register("agent", dict)
    store.put("agent", "a", {"ok": True})
    with pytest.raises(DocumentInvalid) as info:
        store.put("agent", "a", value)
    assert problem in str(info.value)
    assert tuple(info.value.errors[0]["loc"]) == tuple(path.split("."))
    assert (store.get("agent", "a")).data == {"ok": True}
    assert count_rows(store, "versions", "agent") == 1


def test_a_backslash_u0000_text_is_an_ordinary_string(store: DocStore) -> None:
    store.register("agent", dict)
    store.put("agent", "a", {"s": "\\u0000 is how JSON spells NUL", "n": None})
    assert (store.get("agent", "a")).data == {"s": "\\u0000 is how JSON spells NUL", "n": None}


def test_a_nan_in_a_model_field_beside_none_fields_is_refused(store: DocStore) -> None:
    from pydantic import BaseModel

    class LLM(BaseModel):
        model: str
        temperature: float | None = None
        max_tokens: int | None = None

    store.register("llm", LLM)
    with pytest.raises(DocumentInvalid, match="temperature: is nan"):
        store.put("llm", "fast", LLM(model="m", temperature=math.nan))
    assert (store.put("llm", "fast", LLM(model="m"))).data.temperature is None


def test_the_transactions_connection_commits_and_rolls_back_with_the_store(
    store: DocStore,
) -> None:
    store.register("agent", dict)
    table = f'"{store.schema}".mine'
    with store.transaction() as conn:
        conn.execute(f"CREATE TABLE {table} (name text PRIMARY KEY)")
        conn.execute(f"INSERT INTO {table} VALUES ('kept')")
        store.put("agent", "kept", {"n": 1})

    def fails_after_both_writes() -> None:
        with store.transaction() as conn:
            store.put("agent", "lost", {"n": 1})
            with store.transaction() as inner:  # a savepoint: the same connection
                assert inner is conn
                inner.execute(f"INSERT INTO {table} VALUES ('lost')")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fails_after_both_writes()
    with store.transaction() as conn:
        cur = conn.execute(f"SELECT name FROM {table} ORDER BY 1")
        assert cur.fetchall() == [("kept",)]
    assert [d.name for d in store.list("agent")] == ["kept"]
