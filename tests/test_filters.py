"""where= filters, order_by= and keyset pagination, on both store shells."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import count_rows

from docstore import DocStore, InvalidFilter
from docstore import store as docstore_module_store
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
def s(store: Any) -> Any:
    store.register("item", AnyDict)
    store.put_many("item", DOCS)
    return store


def names(store: Any, where: Any, **kw: Any) -> list[str]:
    return [d.name for d in store.list("item", where=where, **kw)]


# --- equality ------------------------------------------------------------------------


def test_nested_and_dotted_equality_match_the_same_documents(s: Any) -> None:
    assert names(s, {"llm": {"model": "claude"}}) == ["a", "c"]
    assert names(s, {"llm.model": "claude"}) == ["a", "c"]
    assert names(s, {"llm.model": "claude", "flag": True}) == ["a"]
    assert names(s, {"llm": {"model": {"$eq": "gpt"}}}) == ["b", "e"]


def test_equality_compiles_to_one_containment_parameter() -> None:
    from docstore._filters import compile_where

    sql, params = compile_where({"llm.model": "claude", "flag": True, "llm": {"x": 1}}, "data")
    assert sql == "AND data @> %(w_0)s" and len(params) == 1


def test_booleans_and_null_match_only_themselves(s: Any) -> None:
    assert names(s, {"flag": True}) == ["a"]  # not the number 1 of "c"
    assert names(s, {"flag": 1}) == ["c"]
    assert names(s, {"flag": False}) == ["b"]
    assert names(s, {"owner": None}) == ["a"]  # null, not a missing key
    assert names(s, {"owner": {"$exists": True}}) == ["a"]
    assert names(s, {"priority": {"$exists": False}}) == ["a", "b", "c", "d"]


def test_numbers_compare_as_numbers_and_strings_as_strings(s: Any) -> None:
    # The peer's bug: compared as text, '9' > '10'. Here a number only meets numbers.
    assert names(s, {"n": {"$gt": 9}}) == ["b"]
    assert names(s, {"n": {"$gte": 9}}) == ["a", "b"]
    assert names(s, {"n": {"$lt": 9}}) == ["e"]
    assert names(s, {"n": {"$lte": 2.5}}) == ["e"]
    # ... and a string only meets strings, in code point order.
    assert names(s, {"n": {"$gt": "10"}}) == ["c"]
    assert names(s, {"n": {"$lt": "9"}}) == ["d"]
    assert names(s, {"llm.temperature": {"$gt": 0.5, "$lt": 1}}) == ["b"]


def test_ne_in_nin_and_contains(s: Any) -> None:
    assert names(s, {"llm.model": {"$ne": "claude"}}) == ["b", "d", "e"]
    assert names(s, {"llm.model": {"$in": ["gpt", "mistral"]}}) == ["b", "d", "e"]
    assert names(s, {"n": {"$in": [9, "10"]}}) == ["a", "d"]
    assert names(s, {"n": {"$nin": [9, "10"]}}) == ["b", "c", "e"]
    assert names(s, {"n": {"$in": []}}) == []
    assert names(s, {"n": {"$nin": []}}) == ["a", "b", "c", "d", "e"]
    assert names(s, {"tags": {"$contains": "x"}}) == ["a", "d"]
    assert names(s, {"tags": {"$contains": ["x", "y"]}}) == ["a"]
    # $ne is the negation of $eq, so a missing key counts as "not equal".
    assert names(s, {"owner": {"$ne": None}}) == ["b", "c", "d", "e"]


def test_and_or_not_combine_filters(s: Any) -> None:
    assert names(s, {"$or": [{"llm.model": "mistral"}, {"n": {"$gt": 9}}]}) == ["b", "d"]
    assert names(s, {"$and": [{"llm.model": "gpt"}, {"n": {"$lt": 5}}]}) == ["e"]
    assert names(s, {"$not": {"llm.model": "claude"}}) == ["b", "d", "e"]
    assert names(s, {"n": {"$not": {"$gt": 5}}}) == ["c", "d", "e"]
    assert names(s, {"$or": [{"$and": [{"flag": True}, {"n": 9}]}, {"priority": 3}]}) == ["a", "e"]


def test_raw_jsonpath_filters_with_and_without_variables(s: Any) -> None:
    assert names(s, {"$jsonpath": '$.llm.model == "gpt"'}) == ["b", "e"]
    assert names(s, {"$jsonpath": {"path": "$.n > $min", "vars": {"min": 5}}}) == ["a", "b"]
    assert names(s, {"$jsonpath_exists": '$.tags[*] ? (@ == "x")'}) == ["a", "d"]
    assert names(s, {"$jsonpath_exists": {"path": "$ ? (@.n == $n)", "vars": {"n": "9"}}}) == ["c"]
    assert names(s, {"$jsonpath": '$.llm.model == "claude"', "n": {"$gt": 5}}) == ["a"]


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
def test_a_bad_filter_is_an_error_naming_the_operator_and_the_path(
    s: Any, where: Any, operator: str, path: str
) -> None:
    with pytest.raises(InvalidFilter) as caught:
        s.list("item", where=where)
    assert caught.value.operator == operator and caught.value.path == path
    assert operator in str(caught.value) and path in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_non_json_filter_values_are_refused_with_the_path(s: Any) -> None:
    with pytest.raises(InvalidFilter, match=r"n .*NaN"):
        s.list("item", where={"n": {"$gt": float("nan")}})
    with pytest.raises(InvalidFilter, match="u0000"):
        s.list("item", where={"llm.model": "a\x00b"})
    with pytest.raises(InvalidFilter, match="empty segment"):
        s.list("item", where={"llm..model": "x"})
    with pytest.raises(InvalidFilter, match="a filter is a dict"):
        s.list("item", where=["n", 1])


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


def test_hostile_keys_and_values_match_only_literally(s: Any) -> None:
    hostile = {f"h{i}": {key: key, "n": i} for i, key in enumerate(HOSTILE)}
    s.put_many("item", hostile)
    for i, key in enumerate(HOSTILE):
        assert names(s, {(key,): key}) == [f"h{i}"], key
        assert names(s, {(key,): {"$gte": key, "$lte": key}}) == [f"h{i}"], key
        assert names(s, {(key,): {"$exists": True}}) == [f"h{i}"], key
        assert names(s, {(key,): {"$in": [key, "other"]}}) == [f"h{i}"], key
        assert names(s, {"n": {"$gt": 100}, (key,): key}) == []
    # A dotted string key is a path; a tuple key keeps the dot as a literal.
    assert names(s, {("dot.ted",): "dot.ted"}) == [f"h{HOSTILE.index('dot.ted')}"]
    assert names(s, {"dot.ted": "dot.ted"}) == []
    # Keys with '$' need a tuple at the filter level, and $eq matches a literal '$' object.
    s.put("item", "dollar", {"q": {"$gt": 1}})
    assert names(s, {"q": {"$eq": {"$gt": 1}}}) == ["dollar"]
    assert count_rows(s, "documents", "item") == len(DOCS) + len(HOSTILE) + 1


def test_filter_values_never_reach_the_sql_or_jsonpath_text() -> None:
    from docstore._filters import compile_where

    for value in HOSTILE:
        sql, params = compile_where({"a": {"$gt": value}, "b": value, "c": {"$in": [value]}}, "data")
        assert value not in sql
        texts = [p for p in params.values() if isinstance(p, str)]
        assert all(value not in t for t in texts)  # paths hold keys only
    sql, params = compile_where({('x") || true || ("',): {"$lt": 1}}, "data")
    assert params["w_0"] == '$."x\\") || true || (\\"" ? (@ < $v)'
    assert re.fullmatch(r"AND jsonb_path_exists\(data, %\(w_0\)s::jsonpath, %\(w_1\)s, true\)", sql)


# --- order_by and keyset pagination --------------------------------------------------


def test_order_by_a_data_path_sorts_typed_values_with_missing_first(s: Any) -> None:
    s.put_many("item", {"p1": {"priority": 10}, "p2": {"priority": 9}, "p3": {"priority": 9.5}})
    got = [d.name for d in s.list("item", order_by="data.priority", where={"priority": {"$exists": True}})]
    assert got == ["e", "p2", "p3", "p1"]  # 3, 9, 9.5, 10: numerically
    assert [d.name for d in s.list("item", order_by="-data.priority", limit=2)] == ["p1", "p3"]
    assert [d.name for d in s.list("item", order_by="data.priority", limit=2)] == ["a", "b"]


def test_order_by_name_descending_and_after_a_name_stays_compatible(s: Any) -> None:
    assert [d.name for d in s.list("item", order_by="-name")] == ["e", "d", "c", "b", "a"]
    assert [d.name for d in s.list("item", after="b", limit=2)] == ["c", "d"]
    assert [d.name for d in s.list("item", after="c", order_by="-name")] == ["b", "a"]


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
def test_keyset_pages_cover_every_document_once_in_order(s: Any, order_by: str) -> None:
    for i in range(7):
        s.put("item", f"z{i}", {"priority": i % 3, "llm": {"model": f"m{i % 2}"}})
    s.put("item", "z1", {"priority": 5})  # a later write: new updated_at and version 2
    whole = s.list("item", order_by=order_by)
    assert len(whole) == 12
    pages: list[str] = []
    after: Any = None
    while True:
        page = s.list("item", order_by=order_by, limit=5, after=after)
        pages += [d.name for d in page]
        if len(page) < 5:
            break
        after = page[-1]
    assert pages == [d.name for d in whole]
    streamed = [d.name for d in s.iter("item", order_by=order_by, batch_size=3)]
    assert streamed == pages


def test_after_a_sort_key_and_name_pair_is_a_cursor_too(s: Any) -> None:
    docs = s.list("item", order_by="updated_at")
    rest = s.list("item", order_by="updated_at", after=(docs[1].updated_at, docs[1].name))
    assert [d.name for d in rest] == [d.name for d in docs[2:]]
    by_model = s.list("item", order_by="data.llm.model", after=("gpt", "b"))
    assert [d.name for d in by_model] == ["e", "d"]


def test_order_by_errors_say_what_is_allowed(s: Any) -> None:
    with pytest.raises(InvalidFilter, match="cannot order by 'size'"):
        s.list("item", order_by="size")
    with pytest.raises(InvalidFilter, match="last Doc"):
        s.list("item", order_by="updated_at", after="b")


# --- log kinds: sessions through the heads, items through read(where=) ---------------


@pytest.fixture
def chat(store: Any) -> Any:
    store.register("conversation", MESSAGE_ADAPTER, mode="log", meta=ConversationMeta)
    for session, agent in (("s1", "weather"), ("s2", "travel"), ("s3", "weather")):
        store.append(
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
    return store


def test_list_filters_and_orders_sessions_by_their_metadata(chat: Any) -> None:
    weather = chat.list("conversation", where={"agent_name": "weather"}, order_by="-updated_at")
    assert [d.name for d in weather] == ["weather/s3", "weather/s1"]
    assert [
        d.data.session_id for d in chat.list("conversation", where={"session_id": {"$in": ["s1", "s2"]}})
    ] == ["s2", "s1"]
    after = chat.list("conversation", order_by="data.session_id", limit=1)
    assert [d.name for d in chat.list("conversation", order_by="data.session_id", after=after[-1])] == [
        "travel/s2",
        "weather/s3",
    ]


def test_read_where_filters_log_items_with_every_operator(chat: Any) -> None:
    name = "weather/s3"
    assistant = chat.read("conversation", name, where={"role": "assistant"})
    assert [m.content if isinstance(m.content, str) else "blocks" for m in assistant] == [
        "blocks",
        "It rains.",
    ]
    big = chat.entries("conversation", name, where={"usage.input_tokens": {"$gte": 20}})
    assert [e.version for e in big] == [4]
    errors = chat.read("conversation", name, where={"content": {"$contains": {"is_error": True}}})
    assert len(errors) == 1
    tools = chat.entries(
        "conversation", name, where={"$jsonpath_exists": '$.content[*] ? (@.type == "tool_use")'}
    )
    assert [e.version for e in tools] == [2]
    assert len(chat.read("conversation", name, last=1, where={"role": "user"})) == 1


# --- indexes -------------------------------------------------------------------------


def explain(store: DocStore, op: Any, *, no_seqscan: bool = False) -> str:
    stmt = next(op.plan())
    with store.pool.connection() as conn, conn.transaction():
        if no_seqscan:
            conn.execute("SET LOCAL enable_seqscan = off")
        rows = conn.execute("EXPLAIN " + stmt.query, stmt.params).fetchall()
    return "\n".join(r[0] for r in rows)


def test_containment_filters_on_20000_documents_use_the_gin_index(docstore_store: DocStore) -> None:
    store = docstore_store
    store.register("agent", AnyDict)
    assert store.create_index("agent") == "documents_agent_data_idx"
    assert store.create_index("agent") == "documents_agent_data_idx"  # again: a no-op
    for start in range(0, 20_000, 5_000):
        store.put_many(
            "agent",
            {
                f"agent-{i:05}": {"llm": {"model": f"model-{i % 200}"}, "tier": i % 4, "tags": [f"t{i % 50}"]}
                for i in range(start, start + 5_000)
            },
        )
    with store.pool.connection() as conn:
        # What autovacuum does after a bulk load: statistics, and the GIN pending list
        # (fastupdate) flushed; until then the planner prices the index too high.
        conn.execute(f'VACUUM ANALYZE "{store.schema}".documents')
    core = store._core  # the exact statement list() runs
    for where in (
        {"llm": {"model": "model-7"}},
        {"llm.model": {"$in": ["model-7", "model-8"]}},
        {"tags": {"$contains": "t3"}},
        {"$or": [{"llm.model": "model-1"}, {"llm.model": "model-2"}]},
        {"$jsonpath": '$.llm.model == "model-9"'},
    ):
        plan = explain(store, core.list_docs("agent", where, None, None))
        assert "documents_agent_data_idx" in plan, (where, plan)
        assert "Seq Scan" not in plan, (where, plan)
    assert len(store.list("agent", where={"llm": {"model": "model-7"}})) == 100
    assert len(store.list("agent", where={"llm.model": {"$in": ["model-7", "model-8"]}})) == 200


def test_a_raw_jsonpath_that_does_not_parse_is_an_invalid_filter(store: Any) -> None:
    store.register("agent", dict)
    store.put("agent", "a", {"x": 1})
    with pytest.raises(InvalidFilter, match="not valid JSONPath") as info:
        store.list("agent", where={"$jsonpath": "$.x ==== 1"})
    assert info.value.operator == "$jsonpath"


def test_a_fresh_store_indexes_no_head_column_and_an_index_is_per_kind(docstore_store: DocStore) -> None:
    store = docstore_store
    store.register("agent", AnyDict)
    store.register("tool", AnyDict)
    with store.pool.connection() as conn:
        indexes = [
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'documents'",
                (store.schema,),
            )
        ]
    assert indexes == ["documents_pkey"]
    store.create_index("agent")
    assert store.create_index("agent", on="updated_at") == "documents_agent_updated_idx"
    store.put_many("agent", {f"a{i:05}": {"tier": i % 4} for i in range(3_000)})
    store.put_many("tool", {f"t{i:05}": {"tier": i % 4} for i in range(3_000)})
    with store.pool.connection() as conn:
        conn.execute(f'VACUUM ANALYZE "{store.schema}".documents')
        # Partial: the other kind's writes added nothing to them.
        sizes = dict(
            conn.execute(
                "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = "
                "c.relnamespace WHERE n.nspname = %s AND c.relname LIKE 'documents_agent_%%'",
                (store.schema,),
            ).fetchall()
        )
    assert sizes == {"documents_agent_data_idx": 3_000, "documents_agent_updated_idx": 3_000}
    core = store._core
    # At 3,000 rows a scan and a top-10 sort cost about what the index does, and the
    # planner has picked either: what is checked is that the index can serve the order.
    recent = explain(store, core.list_docs("agent", None, 10, None, order_by="-updated_at"), no_seqscan=True)
    assert "documents_agent_updated_idx" in recent and "Sort" not in recent, recent
    other = explain(store, core.list_docs("tool", {"tier": 1}, None, None))
    assert "documents_agent" not in other, other
    assert len(store.list("tool", where={"tier": 1})) == 750
    assert [d.name for d in store.list("agent", order_by="-updated_at", limit=1)] == ["a02999"]
    with pytest.raises(ValueError, match="on= is 'data' or 'updated_at'"):
        store.create_index("agent", on="name")  # type: ignore[arg-type]


def test_an_append_that_keeps_the_metadata_is_a_hot_update(docstore_store: DocStore) -> None:
    # The head moves (version, updated_at) but no indexed column changes: PostgreSQL
    # updates it in place (HOT), adding no index entry.
    store = docstore_store
    store.register("log", AnyDict, mode="log")
    store.append("log", "a", [{"n": 0}], meta={})
    query = (
        "SELECT pg_stat_get_xact_tuples_hot_updated(%s::regclass), "
        "pg_stat_get_xact_tuples_updated(%s::regclass)"
    )
    with store.transaction():
        active = docstore_module_store._ACTIVE.get()  # the transaction's connection
        assert active is not None
        # The backend's counts not yet flushed to the statistics (PostgreSQL 15 flushes
        # them lazily) include an earlier transaction's on the same connection: count
        # from here.
        hot_before, updated_before = active.conn.execute(
            query, (f'"{store.schema}".documents',) * 2
        ).fetchone()
        for n in range(1, 21):
            store.append("log", "a", [{"n": n}])
        hot, updated = active.conn.execute(query, (f'"{store.schema}".documents',) * 2).fetchone()
    assert updated - updated_before == 20
    assert hot - hot_before == 20
