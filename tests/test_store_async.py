"""The store as a whole: the JSON limits of its values, on both store shells."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import AsyncFactory, acount_rows

from docstore import AsyncDocStore, DocumentInvalid


@pytest.fixture
async def astore(adocstore_factory: AsyncFactory) -> AsyncDocStore:
    """A fresh store of this module's shell (in place of conftest's ``store``)."""
    return await adocstore_factory()


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
async def test_values_jsonb_cannot_hold_are_refused_naming_the_path(
    astore: AsyncDocStore, value: Any, path: str, problem: str
) -> None:
    astore.register("agent", dict)
    await astore.put("agent", "a", {"ok": True})
    with pytest.raises(DocumentInvalid) as info:
        await astore.put("agent", "a", value)
    assert problem in str(info.value)
    assert tuple(info.value.errors[0]["loc"]) == tuple(path.split("."))
    assert (await astore.get("agent", "a")).data == {"ok": True}
    assert await acount_rows(astore, "versions", "agent") == 1


async def test_a_backslash_u0000_text_is_an_ordinary_string(astore: AsyncDocStore) -> None:
    astore.register("agent", dict)
    await astore.put("agent", "a", {"s": "\\u0000 is how JSON spells NUL", "n": None})
    assert (await astore.get("agent", "a")).data == {"s": "\\u0000 is how JSON spells NUL", "n": None}


async def test_a_nan_in_a_model_field_beside_none_fields_is_refused(astore: AsyncDocStore) -> None:
    from pydantic import BaseModel

    class LLM(BaseModel):
        model: str
        temperature: float | None = None
        max_tokens: int | None = None

    astore.register("llm", LLM)
    with pytest.raises(DocumentInvalid, match="temperature: is nan"):
        await astore.put("llm", "fast", LLM(model="m", temperature=math.nan))
    assert (await astore.put("llm", "fast", LLM(model="m"))).data.temperature is None


async def test_the_transactions_connection_commits_and_rolls_back_with_the_store(
    astore: AsyncDocStore,
) -> None:
    astore.register("agent", dict)
    table = f'"{astore.schema}".mine'
    async with astore.transaction() as conn:
        await conn.execute(f"CREATE TABLE {table} (name text PRIMARY KEY)")
        await conn.execute(f"INSERT INTO {table} VALUES ('kept')")
        await astore.put("agent", "kept", {"n": 1})

    async def fails_after_both_writes() -> None:
        async with astore.transaction() as conn:
            await astore.put("agent", "lost", {"n": 1})
            async with astore.transaction() as inner:  # a savepoint: the same connection
                assert inner is conn
                await inner.execute(f"INSERT INTO {table} VALUES ('lost')")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fails_after_both_writes()
    async with astore.transaction() as conn:
        cur = await conn.execute(f"SELECT name FROM {table} ORDER BY 1")
        assert await cur.fetchall() == [("kept",)]
    assert [d.name for d in await astore.list("agent")] == ["kept"]
