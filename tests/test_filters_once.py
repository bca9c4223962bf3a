"""where= filters: what runs once, not once per store shell. The compiler's own checks
(no store), and the index checks, whose plans and statistics are the server's and the same
for both shells; the rest is in tests/test_filters_async.py and its generated twin
tests/test_filters.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_filters import HOSTILE, AnyDict

from docstore import DocStore
from docstore import store as docstore_module_store


def test_equality_compiles_to_one_containment_parameter() -> None:
    from docstore._filters import compile_where

    sql, params = compile_where({"llm.model": "claude", "flag": True, "llm": {"x": 1}}, "data")
    assert sql == "AND data @> %(w_0)s" and len(params) == 1


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
