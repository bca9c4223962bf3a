"""docstore.langgraph.DocStoreStore: LangGraph's BaseStore, on the shared server.

The cases follow LangGraph's own store tests (libs/checkpoint-postgres/tests in its
repository: batch order, get/put/search/list_namespaces, segment boundaries, filters,
expiry), rewritten for this store, plus what only this store does: each item's history
and per-namespace models. Vector search runs in tests/test_langgraph_vectors.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from pydantic import BaseModel

from docstore import DocStore, DocumentInvalid, InvalidFilter, InvalidKey
from docstore.langgraph import DocStoreStore, VectorSearchUnavailable


@pytest.fixture
def store(docstore_factory: Callable[..., DocStore]) -> DocStoreStore:
    made = DocStoreStore(docstore_factory(), ttl={"refresh_on_read": True})
    made.setup()
    return made


def _expire(store: DocStoreStore, namespace: tuple[str, ...], key: str) -> None:
    """Move an item's expiry into the past without sweeping it."""
    with store.docstore.pool.connection() as conn:
        conn.execute(
            f'UPDATE "{store.docstore.schema}"."{store.kind}_ttl" '
            "SET expires_at = now() - interval '1 minute' WHERE name = %s",
            (store.name_of(namespace, key),),
        )


def _expires_at(store: DocStoreStore, namespace: tuple[str, ...], key: str) -> Any:
    with store.docstore.pool.connection() as conn:
        row = conn.execute(
            f'SELECT expires_at FROM "{store.docstore.schema}"."{store.kind}_ttl" WHERE name = %s',
            (store.name_of(namespace, key),),
        ).fetchone()
    return None if row is None else row[0]


def test_a_batch_runs_reads_before_writes_and_answers_in_order(store: DocStoreStore) -> None:
    store.put(("test", "foo"), "key1", {"data": "value1"})
    store.put(("test", "bar"), "key2", {"data": "value2"})
    results = store.batch(
        [
            GetOp(("test", "foo"), "key1"),
            PutOp(("test",), "key3", {"data": "value3"}),
            SearchOp(("test",), filter={"data": "value1"}),
            ListNamespacesOp(),
            GetOp(("test",), "key3"),  # put by this batch: reads ran first
        ]
    )
    assert isinstance(results[0], Item) and results[0].value == {"data": "value1"}
    assert results[1] is None
    assert isinstance(results[2], list) and [i.key for i in results[2] if isinstance(i, Item)] == ["key1"]
    assert results[3] == [("test", "bar"), ("test", "foo")]
    assert results[4] is None
    item = store.get(("test",), "key3")
    assert item is not None and item.value == {"data": "value3"}


def test_put_get_update_delete(store: DocStoreStore) -> None:
    ns = ("test", "documents")
    store.put(ns, "doc1", {"title": "Test Document"})
    item = store.get(ns, "doc1")
    assert item is not None
    assert (item.namespace, item.key, item.value) == (ns, "doc1", {"title": "Test Document"})
    store.put(ns, "doc1", {"title": "Updated"})
    updated = store.get(ns, "doc1")
    assert updated is not None and updated.value == {"title": "Updated"}
    assert updated.updated_at > item.updated_at and updated.created_at == item.created_at
    assert store.get(("test", "other"), "doc1") is None
    store.delete(ns, "doc1")
    assert store.get(ns, "doc1") is None
    store.delete(ns, "doc1")  # deleting what is gone is no error
    store.batch([PutOp(ns, "never", None)])


def test_a_batch_puts_the_last_value_for_a_key_and_deletes_with_none(store: DocStoreStore) -> None:
    store.put(("t",), "gone", {"v": 0})
    store.batch(
        [
            PutOp(("t",), "k", {"v": 1}),
            PutOp(("t",), "k", {"v": 2}),
            PutOp(("t",), "gone", None),
        ]
    )
    item = store.get(("t",), "k")
    assert item is not None and item.value == {"v": 2}
    assert store.get(("t",), "gone") is None
    assert [d.data for d in store.history(("t",), "k")] == [{"v": 2}]


def test_keys_may_hold_dots_and_labels_may_not(store: DocStoreStore) -> None:
    store.put(("a",), "b..c.d", {"v": 1})
    store.put(("a", "b"), "c.d", {"v": 2})
    store.put(("a",), ".", {"v": 3})
    first, second, third = store.get(("a",), "b..c.d"), store.get(("a", "b"), "c.d"), store.get(("a",), ".")
    assert first is not None and first.value == {"v": 1}
    assert second is not None and second.value == {"v": 2}
    assert third is not None and third.value == {"v": 3}
    assert {(i.namespace, i.key) for i in store.search(("a",))} == {
        (("a",), "b..c.d"),
        (("a", "b"), "c.d"),
        (("a",), "."),
    }
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):  # ops given to batch directly are checked too
        store.batch([PutOp(("a.b",), "k", {"v": 1})])
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph",), "k", {"v": 1})
    with pytest.raises(InvalidKey, match="u0000"):
        store.get(("a",), "nul\x00")
    with pytest.raises(InvalidKey, match="512"):  # namespace and key make a docstore name
        store.put(("a",), "k" * 600, {"v": 1})
    assert store.get(("a",), "k" * 600) is None


def test_search_scopes_stop_at_label_boundaries(store: DocStoreStore) -> None:
    for ns in [
        ("foo",),
        ("foo", "child"),
        ("foo", "child", "deep"),
        ("foobar",),
        ("foobar", "baz"),
        ("foo2",),
    ]:
        store.put(ns, "k", {"v": 1})

    def namespaces(prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
        return {item.namespace for item in store.search(prefix, limit=100)}

    assert namespaces(("foo",)) == {("foo",), ("foo", "child"), ("foo", "child", "deep")}
    assert namespaces(("foobar",)) == {("foobar",), ("foobar", "baz")}
    assert namespaces(("foo", "child")) == {("foo", "child"), ("foo", "child", "deep")}
    assert namespaces(("fo",)) == set()
    assert len(namespaces(())) == 6  # the empty prefix constrains nothing


def test_search_treats_like_wildcards_in_labels_as_text(store: DocStoreStore) -> None:
    for ns in [("user_1",), ("user_1", "child"), ("userX1",), ("a%b",), ("axxb",)]:
        store.put(ns, "k", {"v": 1})
    assert {i.namespace for i in store.search(("user_1",))} == {("user_1",), ("user_1", "child")}
    assert {i.namespace for i in store.search(("a%b",))} == {("a%b",)}


def test_search_filters_pages_and_orders_by_last_update(store: DocStoreStore) -> None:
    store.put(("test", "docs"), "doc1", {"title": "First", "author": "Alice", "score": 4.5, "tags": ["a"]})
    store.put(
        ("test", "docs"), "doc2", {"title": "Second", "author": "Bob", "score": 3, "meta": {"lang": "en"}}
    )
    store.put(("test", "images"), "img1", {"title": "Image", "author": "Alice", "score": "9"})
    assert [i.key for i in store.search(("test",))] == ["img1", "doc2", "doc1"]  # newest first
    assert all(i.score is None for i in store.search(("test",)))
    assert [i.key for i in store.search(["test", "docs"])] == ["doc2", "doc1"]  # type: ignore[arg-type]

    def keys(filter: dict[str, Any]) -> list[str]:
        return sorted(i.key for i in store.search(("test",), filter=filter))

    assert keys({"author": "Alice"}) == ["doc1", "img1"]
    assert keys({"author": "Alice", "title": "Image"}) == ["img1"]
    assert keys({"score": {"$gt": 3.2}}) == ["doc1"]  # the string "9" is no number
    assert keys({"score": {"$gte": 3, "$lt": 4.5}}) == ["doc2"]
    assert keys({"score": {"$lte": "9"}}) == ["img1"]
    assert keys({"author": {"$ne": "Alice"}}) == ["doc2"]
    assert keys({"author": {"$eq": "Bob"}}) == ["doc2"]
    assert keys({"tags": ["a"]}) == ["doc1"]
    assert keys({"meta": {"lang": "en"}}) == ["doc2"]
    assert keys({"missing": None}) == []
    assert [i.key for i in store.search(("test",), limit=2)] == ["img1", "doc2"]
    assert [i.key for i in store.search(("test",), limit=2, offset=2)] == ["doc1"]
    with pytest.raises(InvalidFilter, match=r"\$regex"):
        store.search(("test",), filter={"title": {"$regex": "F.*"}})


def test_search_ignores_query_without_an_index(store: DocStoreStore) -> None:
    store.put(("n",), "k", {"text": "hello"})
    assert [i.key for i in store.search(("n",), query="anything")] == ["k"]


def test_list_namespaces_matches_prefixes_suffixes_wildcards_and_depth(store: DocStoreStore) -> None:
    for ns in [
        ("test", "documents", "public"),
        ("test", "documents", "private"),
        ("test", "images", "public"),
        ("prod", "documents", "public"),
        ("uid", "users", "alice"),
        ("uid", "users", "malice"),
        ("uid", "a", "b", "alice"),
        ("users", "alice\n"),
    ]:
        store.put(ns, "dummy", {"v": 1})
    assert len(store.list_namespaces()) == 8
    assert store.list_namespaces(prefix=("test",)) == [
        ("test", "documents", "private"),
        ("test", "documents", "public"),
        ("test", "images", "public"),
    ]
    assert {ns[-1] for ns in store.list_namespaces(suffix=("public",))} == {"public"}
    assert len(store.list_namespaces(suffix=("public",))) == 3
    assert set(store.list_namespaces(suffix=("alice",))) == {
        ("uid", "users", "alice"),
        ("uid", "a", "b", "alice"),
    }
    assert store.list_namespaces(prefix=("uid", "*", "alice")) == [("uid", "users", "alice")]
    assert store.list_namespaces(prefix=("test", "*"), suffix=("public",), max_depth=2) == [
        ("test", "documents"),
        ("test", "images"),
    ]
    assert store.list_namespaces(max_depth=1) == [("prod",), ("test",), ("uid",), ("users",)]
    assert store.list_namespaces(limit=2, offset=1) == store.list_namespaces()[1:3]
    listed = store.batch(
        [ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("users",)),), max_depth=None)]
    )[0]
    assert listed == [("users", "alice\n")]
    store.delete(("users", "alice\n"), "dummy")  # a namespace lives while it has an item
    assert ("users", "alice\n") not in store.list_namespaces()


def test_every_write_is_a_version_and_deletes_keep_the_history(store: DocStoreStore) -> None:
    ns = ("memories", "u1")
    store.put(ns, "food", {"likes": "pizza"})
    store.put(ns, "food", {"likes": "pizza"})  # unchanged: no new version
    store.put(ns, "food", {"likes": "sushi"})
    store.delete(ns, "food")
    store.put(ns, "food", {"likes": "ramen"})
    history = store.history(ns, "food")
    assert [(d.version, d.deleted, d.data) for d in history] == [
        (1, False, {"likes": "pizza"}),
        (2, False, {"likes": "sushi"}),
        (3, True, {"likes": "sushi"}),
        (4, False, {"likes": "ramen"}),
    ]
    # The item is an ordinary docstore document: its tools work on it.
    name = store.name_of(ns, "food")
    store.docstore.revert(store.kind, name, 1)
    item = store.get(ns, "food")
    assert item is not None and item.value == {"likes": "pizza"}


class Profile(BaseModel):
    name: str
    age: int
    language: str = "en"


class Strict(BaseModel):
    name: str


def test_a_model_registered_for_a_prefix_validates_and_normalises_values(store: DocStoreStore) -> None:
    store.register_model(("users",), Profile)
    store.register_model(("users", "admins"), Strict)
    store.put(("users", "u1"), "profile", {"name": "Ada", "age": "36"})
    item = store.get(("users", "u1"), "profile")
    assert item is not None and item.value == {"name": "Ada", "age": 36, "language": "en"}
    # The longest registered prefix applies.
    store.put(("users", "admins"), "root", {"name": "Grace"})
    with pytest.raises(DocumentInvalid) as caught:
        store.put(("users", "u2"), "profile", {"name": "Bob", "age": "old"})
    assert caught.value.kind == store.kind and caught.value.name == store.name_of(("users", "u2"), "profile")
    assert "age" in str(caught.value)
    # A batch with one invalid value writes nothing.
    with pytest.raises(DocumentInvalid):
        store.batch(
            [
                PutOp(("users", "u3"), "profile", {"name": "Cy", "age": 1}),
                PutOp(("users", "u4"), "profile", {"age": 2}),
            ]
        )
    assert store.get(("users", "u3"), "profile") is None
    # Outside every prefix, any object goes.
    store.put(("other",), "x", {"anything": ["goes"]})


def test_expired_items_are_omitted_when_configured_and_never_refreshed(store: DocStoreStore) -> None:
    assert store.ttl_config is not None
    store.ttl_config["omit_expired"] = True
    ns = ("omit",)
    store.put(ns, "expired", {"n": 0}, ttl=1)
    store.put(ns, "live", {"n": 1}, ttl=1)
    store.put(ns, "forever", {"n": 2})
    _expire(store, ns, "expired")
    before = _expires_at(store, ns, "expired")
    live_before = _expires_at(store, ns, "live")

    assert store.get(ns, "expired", refresh_ttl=True) is None
    assert sorted(i.key for i in store.search(ns, refresh_ttl=True)) == ["forever", "live"]
    assert _expires_at(store, ns, "expired") == before  # not brought back by a read
    assert _expires_at(store, ns, "live") > live_before  # extended by the read
    assert _expires_at(store, ns, "forever") is None
    store.put(("only", "expired"), "e", {"n": 0}, ttl=1)
    _expire(store, ("only", "expired"), "e")
    assert ("only", "expired") not in store.list_namespaces()

    store.ttl_config["omit_expired"] = False  # LangGraph's default: expired until swept
    assert store.get(ns, "expired", refresh_ttl=False) is not None
    assert store.sweep_ttl() == 2
    assert store.get(ns, "expired") is None
    assert [d.deleted for d in store.history(ns, "expired")] == [False, True]  # a tombstone
    assert store.get(ns, "live") is not None


def test_reads_refresh_expiry_only_when_asked_and_a_put_without_ttl_clears_it(store: DocStoreStore) -> None:
    ns = ("ttl",)
    store.put(ns, "k", {"n": 1}, ttl=10)
    first = _expires_at(store, ns, "k")
    store.get(ns, "k", refresh_ttl=False)
    store.search(ns, refresh_ttl=False)
    assert _expires_at(store, ns, "k") == first
    store.get(ns, "k")  # the config's refresh_on_read
    assert _expires_at(store, ns, "k") > first
    store.put(ns, "k", {"n": 2}, ttl=None)
    assert _expires_at(store, ns, "k") is None
    assert store.sweep_ttl() == 0


def test_a_store_with_default_ttl_expires_new_items(docstore_factory: Callable[..., DocStore]) -> None:
    store = DocStoreStore(docstore_factory(), ttl={"default_ttl": 5, "sweep_interval_minutes": 1})
    store.setup()
    store.put(("d",), "k", {"n": 1})
    assert _expires_at(store, ("d",), "k") is not None
    store.start_ttl_sweeper(sweep_interval_minutes=1)
    assert store.stop_ttl_sweeper(timeout=5)


def test_the_async_methods_run_the_same_batch(store: DocStoreStore) -> None:
    async def main() -> None:
        await store.aput(("a",), "k", {"v": 1})
        item = await store.aget(("a",), "k")
        assert item is not None and item.value == {"v": 1}
        assert [i.key for i in await store.asearch(("a",), filter={"v": 1})] == ["k"]
        assert await store.alist_namespaces() == [("a",)]
        await store.adelete(("a",), "k")
        assert await store.aget(("a",), "k") is None

    asyncio.run(main())


def test_setup_is_idempotent_and_two_kinds_are_two_stores(docstore_factory: Callable[..., DocStore]) -> None:
    docstore = docstore_factory()
    one = DocStoreStore(docstore, kind="memories_a")
    two = DocStoreStore(docstore, kind="memories_b")
    one.setup()
    one.setup()
    two.setup()
    one.put(("x",), "k", {"v": 1})
    assert two.get(("x",), "k") is None
    assert two.list_namespaces() == []


def test_vector_search_is_refused_where_the_server_has_no_pgvector(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    with psycopg.connect(docstore_dsn) as conn:
        has = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    assert has is None, "this test needs a server without pgvector (Debian 12's PostgreSQL 15 has none)"
    from lc_support import LetterEmbeddings

    store = DocStoreStore(
        docstore_factory(), kind=f"v{uuid.uuid4().hex[:8]}", index={"dims": 8, "embed": LetterEmbeddings(8)}
    )
    with pytest.raises(VectorSearchUnavailable, match="pgvector") as caught:
        store.setup()
    assert "apt install postgresql-<major>-pgvector" in str(caught.value)
    assert "docstore[embedded]" in str(caught.value)


def test_a_graph_reads_and_writes_memories_through_the_store(store: DocStoreStore) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph
    from langgraph.store.base import BaseStore

    class State(TypedDict):
        user: str
        seen: int

    def remember(state: State, *, store: BaseStore) -> dict[str, int]:
        ns = ("memories", state["user"])
        before = store.get(ns, "visits")
        count = (before.value["count"] if before else 0) + 1
        store.put(ns, "visits", {"count": count})
        return {"seen": count}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)
    graph = builder.compile(store=store)
    assert graph.invoke({"user": "ada", "seen": 0})["seen"] == 1
    assert graph.invoke({"user": "ada", "seen": 0})["seen"] == 2
    assert [d.data for d in store.history(("memories", "ada"), "visits")] == [{"count": 1}, {"count": 2}]
