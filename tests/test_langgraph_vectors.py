"""DocStoreStore's search(query=...) through pgvector, on a throwaway embedded server
(pgserver's PostgreSQL ships pgvector; Debian 12's PostgreSQL 15 has no package of it).

The cases follow LangGraph's own vector-store tests: filters with a query, updates that
move an item's embedding, index=False, paging, odd queries, fields set per store and per
put, scores equal to the distance they name, and text in other scripts.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lc_support import LetterEmbeddings, pgvector_server

from docstore import DocStore
from docstore.langgraph import DocStoreStore, VectorSearchUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.servers]  # starts an embedded server with pgvector

DISTANCES = ["cosine", "l2", "inner_product"]


@pytest.fixture(scope="module")
def server() -> Iterator[DocStore]:
    with pgvector_server() as dsn, DocStore.connect(dsn, max_size=4) as docstore:
        docstore.init_schema()
        yield docstore


def _store(docstore: DocStore, distance: str = "cosine", fields: list[str] | None = None) -> DocStoreStore:
    index: Any = {"dims": 64, "embed": LetterEmbeddings(64), "distance_type": distance}
    if fields is not None:
        index["fields"] = fields
    made = DocStoreStore(
        docstore, kind=f"v{uuid.uuid4().hex[:12]}", index=index, ttl={"refresh_on_read": True}
    )
    made.setup()
    made.setup()  # idempotent
    return made


@pytest.fixture(params=DISTANCES)
def store(request: pytest.FixtureRequest, server: DocStore) -> DocStoreStore:
    return _store(server, request.param)


def test_a_query_ranks_matching_items_by_similarity(store: DocStoreStore) -> None:
    for key, value in [
        ("doc1", {"text": "red apple", "color": "red", "score": 4.5}),
        ("doc2", {"text": "red car", "color": "red", "score": 3.0}),
        ("doc3", {"text": "green apple", "color": "green", "score": 4.0}),
        ("doc4", {"text": "blue car", "color": "blue", "score": 3.5}),
    ]:
        store.put(("test",), key, value)
    found = store.search(("test",), query="red apple", filter={"color": "red"})
    assert [r.key for r in found] == ["doc1", "doc2"]
    assert found[0].score is not None and found[1].score is not None and found[0].score > found[1].score
    assert store.search(("test",), query="red car", filter={"color": "red"})[0].key == "doc2"
    assert {r.key for r in store.search(("test",), query="blue", filter={"score": {"$gt": 3.2}})} == {
        "doc1",
        "doc3",
        "doc4",
    }
    assert [
        r.key
        for r in store.search(("test",), query="apple", filter={"score": {"$gte": 4.0}, "color": "green"})
    ] == ["doc3"]
    assert store.search(("other",), query="red apple") == []


def test_an_update_moves_the_embedding_and_index_false_leaves_an_item_out(store: DocStoreStore) -> None:
    store.put(("test",), "doc1", {"text": "zany zebra xerxes"})
    store.put(("test",), "doc2", {"text": "something about dogs"})
    first = store.search(("test",), query="zany xerxes")
    assert first[0].key == "doc1"
    store.put(("test",), "doc1", {"text": "new text about dogs"})
    after = {r.key: r.score for r in store.search(("test",), query="zany xerxes")}
    assert after["doc1"] is not None and first[0].score is not None and after["doc1"] < first[0].score
    store.put(("test",), "doc4", {"text": "new text about dogs"}, index=False)
    assert "doc4" not in {r.key for r in store.search(("test",), query="new text about dogs")}
    assert "doc4" in {r.key for r in store.search(("test",))}  # still there without a query
    store.delete(("test",), "doc1")
    assert "doc1" not in {r.key for r in store.search(("test",), query="new text about dogs")}
    # Only the current version's vectors are kept.
    with store.docstore.pool.connection() as conn:
        rows = conn.execute(
            f'SELECT name, version FROM "{store.docstore.schema}"."{store.kind}_vectors" ORDER BY name'
        ).fetchall()
    assert rows == [(store.name_of(("test",), "doc2"), 1)]


def test_query_results_page_and_odd_queries_still_answer(store: DocStoreStore) -> None:
    for i in range(5):
        store.put(("test",), f"doc{i}", {"text": f"test document number {i}"})
    page1 = store.search(("test",), query="test", limit=2)
    page2 = store.search(("test",), query="test", limit=2, offset=2)
    rest = store.search(("test",), query="test", limit=10, offset=4)
    assert len(page1) == len(page2) == 2 and len(rest) == 1
    assert {r.key for r in page1 + page2 + rest} == {f"doc{i}" for i in range(5)}
    assert len(store.search(("test",), query="test", limit=10)) == 5
    for query in ["", None, "test " * 100, "test!@#$%^&*()", "%_'\\"]:
        assert len(store.search(("test",), query=query)) == 5


def test_fields_of_the_store_and_of_a_put_choose_what_is_embedded(server: DocStore) -> None:
    store = _store(server, "cosine", fields=["key0", "key1", "key3"])
    store.put(("test",), "doc1", {"key1": "xxx", "key2": "yyy", "key3": "zzz"})  # no key0: skipped
    store.put(("test",), "doc2", {"key0": "uuu", "key1": "vvv", "key2": "www", "key3": "xxx"})
    both = store.search(("test",), query="xxx")
    assert {r.key for r in both} == {"doc1", "doc2"}
    assert both[0].score == pytest.approx(both[1].score, abs=1e-6)
    assert store.search(("test",), query="uuu")[0].key == "doc2"
    assert store.search(("test",), query="zzz")[0].key == "doc1"
    # key2 is embedded for neither: "www" scores below an embedded exact match.
    assert all(r.score is not None and r.score < 0.99 for r in store.search(("test",), query="www"))

    store.put(("per-put",), "doc3", {"key0": "aaa", "key1": "bbb", "key2": "ccc"}, index=["key0", "key1"])
    store.put(("per-put",), "doc4", {"key0": "eee", "key1": "bbb", "key3": "ggg"}, index=["key1", "key3"])
    assert store.search(("per-put",), query="aaa")[0].key == "doc3"
    assert store.search(("per-put",), query="ggg")[0].key == "doc4"
    store.put(("per-put",), "doc5", {"items": ["hhh", "iii"]}, index=["items[*]"])
    assert store.search(("per-put",), query="iii")[0].key == "doc5"


def _similarity(distance: str, a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    if distance == "cosine":
        return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
    if distance == "inner_product":
        return dot
    return -math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


@pytest.mark.parametrize("query", ["aaa", "bbb", "abcd", "poisson"])
def test_scores_are_the_similarity_the_distance_names(store: DocStoreStore, query: str) -> None:
    store.put(("test",), "doc", {"key0": "aaa"}, index=["key0", "key1"])
    [found] = store.search((), query=query)
    embeddings = LetterEmbeddings(64)
    distance = str((store.index_config or {})["distance_type"])
    expected = _similarity(distance, embeddings.embed_query(query), embeddings.embed_query("aaa"))
    assert found.score == pytest.approx(expected, abs=1e-4)


def test_text_in_other_scripts_finds_itself(store: DocStoreStore) -> None:
    texts = ["这是中文", "これは日本語です", "이건 한국어야", "Это русский", "यह रूसी है"]
    for i, text in enumerate(texts):
        store.put(("user_123", "memories"), str(i), {"text": text})
    for i, text in enumerate(texts):
        assert store.search(("user_123", "memories"), query=text)[0].key == str(i)


def test_expired_items_leave_query_results_when_omitted(server: DocStore) -> None:
    store = _store(server)
    assert store.ttl_config is not None
    store.ttl_config["omit_expired"] = True
    store.put(("t",), "a", {"text": "apple"}, ttl=1)
    store.put(("t",), "b", {"text": "apples"})
    with store.docstore.pool.connection() as conn:
        conn.execute(
            f'UPDATE "{store.docstore.schema}"."{store.kind}_ttl"'
            " SET expires_at = now() - interval '1 minute'"
        )
    assert [r.key for r in store.search(("t",), query="apple")] == ["b"]


def test_halfvec_needs_a_pgvector_that_has_it(server: DocStore) -> None:
    with server.pool.connection() as conn:
        row = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
    assert row is not None
    version = tuple(int(p) for p in str(row[0]).split("."))
    store = DocStoreStore(
        server,
        kind=f"h{uuid.uuid4().hex[:12]}",
        index={"dims": 8, "embed": LetterEmbeddings(8), "vector_type": "halfvec"},
    )
    if version < (0, 7):
        with pytest.raises(VectorSearchUnavailable, match=r"'halfvec' needs pgvector 0\.7"):
            store.setup()
    else:
        store.setup()
        store.put(("h",), "k", {"text": "half"})
        assert [r.key for r in store.search(("h",), query="half")] == ["k"]
