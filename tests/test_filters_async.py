"""where= filters, order_by= and keyset pagination, on both store shells."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import AsyncFactory, acount_rows

from docstore import AsyncDocStore, InvalidFilter
from docstore.agents.messages import MESSAGE_ADAPTER, ConversationMeta

AnyDict = dict[str, Any]

DOCS: dict[str, AnyDict] = {
    "a": {
        "n": 9,
        "llm": {"model": "claude", "temperature": 0.2},
        "tags": ["x", "y"],
        "flag": True,
        "owner": None,
    },
    "b": {"n": 10, "llm": {"model": "gpt", "temperature": 0.9}, "tags": ["y"], "flag": False},
    "c": {"n": "9", "llm": {"model": "claude", "temperature": 1.5}, "tags": [], "flag": 1},
    "d": {"n": "10", "llm": {"model": "mistral"}, "tags": ["x"]},
    "e": {"n": 2.5, "llm": {"model": "gpt"}, "priority": 3},
}


@pytest.fixture
async def astore(adocstore_factory: AsyncFactory) -> AsyncDocStore:
    """A fresh store of this module's shell (in place of conftest's ``store``)."""
    return await adocstore_factory()


@pytest.fixture
async def s(astore: AsyncDocStore) -> AsyncDocStore:
    astore.register("item", AnyDict)
    await astore.put_many("item", DOCS)
    return astore


async def names(astore: AsyncDocStore, where: Any, **kw: Any) -> list[str]:
    return [d.name for d in await astore.list("item", where=where, **kw)]


# --- equality ------------------------------------------------------------------------


async def test_nested_and_dotted_equality_match_the_same_documents(s: AsyncDocStore) -> None:
    assert await names(s, {"llm": {"model": "claude"}}) == ["a", "c"]
    assert await names(s, {"llm.model": "claude"}) == ["a", "c"]
    assert await names(s, {"llm.model": "claude", "flag": True}) == ["a"]
    assert await names(s, {"llm": {"model": {"$eq": "gpt"}}}) == ["b", "e"]


async def test_booleans_and_null_match_only_themselves(s: AsyncDocStore) -> None:
    assert await names(s, {"flag": True}) == ["a"]  # not the number 1 of "c"
    assert await names(s, {"flag": 1}) == ["c"]
    assert await names(s, {"flag": False}) == ["b"]
    assert await names(s, {"owner": None}) == ["a"]  # null, not a missing key
    assert await names(s, {"owner": {"$exists": True}}) == ["a"]
    assert await names(s, {"priority": {"$exists": False}}) == ["a", "b", "c", "d"]


async def test_numbers_compare_as_numbers_and_strings_as_strings(s: AsyncDocStore) -> None:
    # The peer's bug: compared as text, '9' > '10'. Here a number only meets numbers.
    assert await names(s, {"n": {"$gt": 9}}) == ["b"]
    assert await names(s, {"n": {"$gte": 9}}) == ["a", "b"]
    assert await names(s, {"n": {"$lt": 9}}) == ["e"]
    assert await names(s, {"n": {"$lte": 2.5}}) == ["e"]
    # ... and a string only meets strings, in code point order.
    assert await names(s, {"n": {"$gt": "10"}}) == ["c"]
    assert await names(s, {"n": {"$lt": "9"}}) == ["d"]
    assert await names(s, {"llm.temperature": {"$gt": 0.5, "$lt": 1}}) == ["b"]


async def test_ne_in_nin_and_contains(s: AsyncDocStore) -> None:
    assert await names(s, {"llm.model": {"$ne": "claude"}}) == ["b", "d", "e"]
    assert await names(s, {"llm.model": {"$in": ["gpt", "mistral"]}}) == ["b", "d", "e"]
    assert await names(s, {"n": {"$in": [9, "10"]}}) == ["a", "d"]
    assert await names(s, {"n": {"$nin": [9, "10"]}}) == ["b", "c", "e"]
    assert await names(s, {"n": {"$in": []}}) == []
    assert await names(s, {"n": {"$nin": []}}) == ["a", "b", "c", "d", "e"]
    assert await names(s, {"tags": {"$contains": "x"}}) == ["a", "d"]
    assert await names(s, {"tags": {"$contains": ["x", "y"]}}) == ["a"]
    # $ne is the negation of $eq, so a missing key counts as "not equal".
    assert await names(s, {"owner": {"$ne": None}}) == ["b", "c", "d", "e"]


async def test_and_or_not_combine_filters(s: AsyncDocStore) -> None:
    assert await names(s, {"$or": [{"llm.model": "mistral"}, {"n": {"$gt": 9}}]}) == ["b", "d"]
    assert await names(s, {"$and": [{"llm.model": "gpt"}, {"n": {"$lt": 5}}]}) == ["e"]
    assert await names(s, {"$not": {"llm.model": "claude"}}) == ["b", "d", "e"]
    assert await names(s, {"n": {"$not": {"$gt": 5}}}) == ["c", "d", "e"]
    assert await names(s, {"$or": [{"$and": [{"flag": True}, {"n": 9}]}, {"priority": 3}]}) == ["a", "e"]


async def test_raw_jsonpath_filters_with_and_without_variables(s: AsyncDocStore) -> None:
    assert await names(s, {"$jsonpath": '$.llm.model == "gpt"'}) == ["b", "e"]
    assert await names(s, {"$jsonpath": {"path": "$.n > $min", "vars": {"min": 5}}}) == ["a", "b"]
    assert await names(s, {"$jsonpath_exists": '$.tags[*] ? (@ == "x")'}) == ["a", "d"]
    assert await names(s, {"$jsonpath_exists": {"path": "$ ? (@.n == $n)", "vars": {"n": "9"}}}) == ["c"]
    assert await names(s, {"$jsonpath": '$.llm.model == "claude"', "n": {"$gt": 5}}) == ["a"]


# --- errors and injection ------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "operator", "path"),
    [
        ({"llm.temperature": {"$gtt": 1}}, "$gtt", "llm.temperature"),
        ({"llm": {"temperature": {"$regex": "x"}}}, "$regex", "llm.temperature"),
        ({"$nor": [{"a": 1}]}, "$nor", ""),
        ({"a": {"$in": "abc"}}, "$in", "a"),
        ({"a": {"$gt": [1]}}, "$gt", "a"),
        ({"a": {"$gt": 1, "b": 2}}, "$gt", "a"),
        ({"a": {"$exists": "yes"}}, "$exists", "a"),
        ({"$or": []}, "$or", ""),
    ],
)
async def test_a_bad_filter_is_an_error_naming_the_operator_and_the_path(
    s: AsyncDocStore, where: Any, operator: str, path: str
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        await s.list("item", where=where)
    assert caught.value.operator == operator and caught.value.path == path
    assert operator in str(caught.value) and path in str(caught.value)
    assert isinstance(caught.value, ValueError)


async def test_non_json_filter_values_are_refused_with_the_path(s: AsyncDocStore) -> None:
    with pytest.raises(InvalidFilter, match=r"n .*NaN"):
        await s.list("item", where={"n": {"$gt": float("nan")}})
    with pytest.raises(InvalidFilter, match="u0000"):
        await s.list("item", where={"llm.model": "a\x00b"})
    with pytest.raises(InvalidFilter, match="empty segment"):
        await s.list("item", where={"llm..model": "x"})
    with pytest.raises(InvalidFilter, match="a filter is a dict"):
        await s.list("item", where=["n", 1])


HOSTILE = [
    "'; DROP TABLE documents; --",
    '") || true || ("',
    "$.n",
    'a"b',
    "back\\slash",
    "dot.ted",
    "$dollar",
    "@ == @",
    "ünïcødé ✓ 🐘",
    "line\nbreak",
    "%(kind)s",
    "{s}",
]


async def test_hostile_keys_and_values_match_only_literally(s: AsyncDocStore) -> None:
    hostile = {f"h{i}": {key: key, "n": i} for i, key in enumerate(HOSTILE)}
    await s.put_many("item", hostile)
    for i, key in enumerate(HOSTILE):
        assert await names(s, {(key,): key}) == [f"h{i}"], key
        assert await names(s, {(key,): {"$gte": key, "$lte": key}}) == [f"h{i}"], key
        assert await names(s, {(key,): {"$exists": True}}) == [f"h{i}"], key
        assert await names(s, {(key,): {"$in": [key, "other"]}}) == [f"h{i}"], key
        assert await names(s, {"n": {"$gt": 100}, (key,): key}) == []
    # A dotted string key is a path; a tuple key keeps the dot as a literal.
    assert await names(s, {("dot.ted",): "dot.ted"}) == [f"h{HOSTILE.index('dot.ted')}"]
    assert await names(s, {"dot.ted": "dot.ted"}) == []
    # Keys with '$' need a tuple at the filter level, and $eq matches a literal '$' object.
    await s.put("item", "dollar", {"q": {"$gt": 1}})
    assert await names(s, {"q": {"$eq": {"$gt": 1}}}) == ["dollar"]
    assert await acount_rows(s, "documents", "item") == len(DOCS) + len(HOSTILE) + 1


# --- order_by and keyset pagination --------------------------------------------------


async def test_order_by_a_data_path_sorts_typed_values_with_missing_first(s: AsyncDocStore) -> None:
    await s.put_many("item", {"p1": {"priority": 10}, "p2": {"priority": 9}, "p3": {"priority": 9.5}})
    got = [
        d.name for d in await s.list("item", order_by="data.priority", where={"priority": {"$exists": True}})
    ]
    assert got == ["e", "p2", "p3", "p1"]  # 3, 9, 9.5, 10: numerically
    assert [d.name for d in await s.list("item", order_by="-data.priority", limit=2)] == ["p1", "p3"]
    assert [d.name for d in await s.list("item", order_by="data.priority", limit=2)] == ["a", "b"]


async def test_order_by_name_descending_and_after_a_name_stays_compatible(s: AsyncDocStore) -> None:
    assert [d.name for d in await s.list("item", order_by="-name")] == ["e", "d", "c", "b", "a"]
    assert [d.name for d in await s.list("item", after="b", limit=2)] == ["c", "d"]
    assert [d.name for d in await s.list("item", after="c", order_by="-name")] == ["b", "a"]


@pytest.mark.parametrize(
    "order_by",
    [
        "name",
        "-name",
        "updated_at",
        "-updated_at",
        "created_at",
        "-version",
        "data.priority",
        "-data.llm.model",
    ],
)
async def test_keyset_pages_cover_every_document_once_in_order(s: AsyncDocStore, order_by: str) -> None:
    for i in range(7):
        await s.put("item", f"z{i}", {"priority": i % 3, "llm": {"model": f"m{i % 2}"}})
    await s.put("item", "z1", {"priority": 5})  # a later write: new updated_at and version 2
    whole = await s.list("item", order_by=order_by)
    assert len(whole) == 12
    pages: list[str] = []
    after: Any = None
    while True:
        page = await s.list("item", order_by=order_by, limit=5, after=after)
        pages += [d.name for d in page]
        if len(page) < 5:
            break
        after = page[-1]
    assert pages == [d.name for d in whole]
    streamed = [d.name async for d in s.iter("item", order_by=order_by, batch_size=3)]
    assert streamed == pages


async def test_after_a_sort_key_and_name_pair_is_a_cursor_too(s: AsyncDocStore) -> None:
    docs = await s.list("item", order_by="updated_at")
    rest = await s.list("item", order_by="updated_at", after=(docs[1].updated_at, docs[1].name))
    assert [d.name for d in rest] == [d.name for d in docs[2:]]
    by_model = await s.list("item", order_by="data.llm.model", after=("gpt", "b"))
    assert [d.name for d in by_model] == ["e", "d"]


async def test_order_by_errors_say_what_is_allowed(s: AsyncDocStore) -> None:
    with pytest.raises(InvalidFilter, match="cannot order by 'size'"):
        await s.list("item", order_by="size")
    with pytest.raises(InvalidFilter, match="last Doc"):
        await s.list("item", order_by="updated_at", after="b")


# --- log kinds: sessions through the heads, items through read(where=) ---------------


@pytest.fixture
async def chat(astore: AsyncDocStore) -> AsyncDocStore:
    astore.register("conversation", MESSAGE_ADAPTER, mode="log", meta=ConversationMeta)
    for session, agent in (("s1", "weather"), ("s2", "travel"), ("s3", "weather")):
        await astore.append(
            "conversation",
            f"{agent}/{session}",
            [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "checking"},
                        {"type": "tool_use", "id": "t1", "name": "forecast", "input": {"city": "Oslo"}},
                    ],
                    "usage": {"input_tokens": 10, "output_tokens": 4},
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": "rain",
                            "is_error": session == "s3",
                        }
                    ],
                },
                {
                    "role": "assistant",
                    "content": "It rains.",
                    "usage": {"input_tokens": 30, "output_tokens": 3},
                },
            ],
            meta={"agent_name": agent, "session_id": session},
        )
    return astore


async def test_list_filters_and_orders_sessions_by_their_metadata(chat: AsyncDocStore) -> None:
    weather = await chat.list("conversation", where={"agent_name": "weather"}, order_by="-updated_at")
    assert [d.name for d in weather] == ["weather/s3", "weather/s1"]
    assert [
        d.data.session_id
        for d in await chat.list("conversation", where={"session_id": {"$in": ["s1", "s2"]}})
    ] == ["s2", "s1"]
    after = await chat.list("conversation", order_by="data.session_id", limit=1)
    assert [d.name for d in await chat.list("conversation", order_by="data.session_id", after=after[-1])] == [
        "travel/s2",
        "weather/s3",
    ]


async def test_read_where_filters_log_items_with_every_operator(chat: AsyncDocStore) -> None:
    name = "weather/s3"
    assistant = await chat.read("conversation", name, where={"role": "assistant"})
    assert [m.content if isinstance(m.content, str) else "blocks" for m in assistant] == [
        "blocks",
        "It rains.",
    ]
    big = await chat.read("conversation", name, where={"usage.input_tokens": {"$gte": 20}})
    assert big.versions == [4]
    errors = await chat.read("conversation", name, where={"content": {"$contains": {"is_error": True}}})
    assert len(errors) == 1
    tools = await chat.read(
        "conversation", name, where={"$jsonpath_exists": '$.content[*] ? (@.type == "tool_use")'}
    )
    assert tools.versions == [2]
    assert len(await chat.read("conversation", name, last=1, where={"role": "user"})) == 1


# --- a raw JSONPath ------------------------------------------------------------------


async def test_a_raw_jsonpath_that_does_not_parse_is_an_invalid_filter(astore: AsyncDocStore) -> None:
    astore.register("agent", dict)
    await astore.put("agent", "a", {"x": 1})
    with pytest.raises(InvalidFilter, match="not valid JSONPath") as info:
        await astore.list("agent", where={"$jsonpath": "$.x ==== 1"})
    assert info.value.operator == "$jsonpath"
