"""The store as a whole: set-up, transactions, pools, concurrency, memory, JSON limits;
what runs once, not once per store shell. The JSON limits checked on both shells are in
tests/test_store_async.py and its generated twin tests/test_store.py."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import count_rows
from psycopg_pool import ConnectionPool

from docstore import (
    AsyncDocStore,
    DatabaseUnavailable,
    DocStore,
    SchemaMissing,
    VersionConflict,
    _sql,
)


def test_init_schema_is_idempotent_and_returns_the_ddl_version(docstore_store: DocStore) -> None:
    docstore_store.register("agent", dict)
    docstore_store.put("agent", "a", {"x": 1})
    assert docstore_store.init_schema() == 3
    assert docstore_store.init_schema() == 3
    assert docstore_store.get("agent", "a").data == {"x": 1}


def test_the_ddl_version_is_written_once_in_schema_sql_and_read_from_there(docstore_store: DocStore) -> None:
    ddl = _sql.schema_ddl()
    assert ddl.count('"ddl_version":') == 1  # the ON CONFLICT compares the same literal
    assert _sql.release_ddl_version() == 3 == docstore_store.init_schema()
    with docstore_store.pool.connection() as conn:
        recorded = conn.execute(docstore_store._core.sql(_sql.RECORDED_DDL_VERSION)).fetchall()
    assert recorded == [(3,)]


def test_a_store_recorded_by_a_newer_docstore_is_refused(docstore_store: DocStore) -> None:
    with docstore_store.pool.connection() as conn:
        conn.execute(
            docstore_store._core.sql(
                "UPDATE {s}.documents SET data = '{\"ddl_version\": 4}' WHERE kind = '_docstore'"
            )
        )
    with pytest.raises(
        SchemaMissing, match=r"at DDL version 4, newer than this docstore release knows \(DDL version 3\)"
    ):
        docstore_store.init_schema()


def test_a_store_without_its_tables_says_to_run_init_schema(
    docstore_factory: Callable[..., DocStore],
) -> None:
    store = docstore_factory(init=False)
    store.register("agent", dict)
    with pytest.raises(SchemaMissing, match=r"run store.init_schema\(\)"):
        store.get("agent", "a")
    with pytest.raises(SchemaMissing):
        store.put("agent", "a", {})


def test_transaction_commits_all_writes_together(docstore_store: DocStore) -> None:
    s = docstore_store
    s.register("agent", dict)
    with s.transaction():
        s.put("agent", "a", {"x": 1})
        s.put("agent", "b", {"x": 2})
        assert s.get("agent", "a").version == 1  # reads inside see the writes
    assert sorted(s.get_many("agent", ["a", "b"])) == ["a", "b"]


def test_transaction_rolls_back_every_write_on_error(docstore_store: DocStore) -> None:
    s = docstore_store
    s.register("agent", dict)
    s.put("agent", "a", {"x": 0})
    with pytest.raises(VersionConflict), s.transaction():
        s.put("agent", "a", {"x": 1})
        s.put("agent", "b", {"x": 1})
        s.put("agent", "a", {"x": 2}, expected_version=1)  # stale: a is at 2
    assert s.get("agent", "a").data == {"x": 0}
    assert s.get_many("agent", ["b"]) == {}
    assert count_rows(s, "versions", "agent") == 1


def test_nested_transaction_is_a_savepoint(docstore_store: DocStore) -> None:
    s = docstore_store
    s.register("agent", dict)
    with s.transaction():
        s.put("agent", "outer", {})
        with pytest.raises(RuntimeError), s.transaction():
            s.put("agent", "inner", {})
            raise RuntimeError
    assert list(s.get_many("agent", ["outer", "inner"])) == ["outer"]


async def test_async_transaction_commits_or_rolls_back(docstore_async_store: AsyncDocStore) -> None:
    s = docstore_async_store
    s.register("agent", dict)
    async with s.transaction():
        await s.put("agent", "a", {})
        await s.put("agent", "b", {})
    with pytest.raises(ZeroDivisionError):
        async with s.transaction():
            await s.put("agent", "c", {})
            1 / 0  # noqa: B018
    assert sorted(await s.get_many("agent", ["a", "b", "c"])) == ["a", "b"]


def test_a_pool_with_autocommit_off_still_commits_every_write(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    schema = docstore_factory().schema
    with ConnectionPool(docstore_dsn, min_size=1, max_size=2, kwargs={"autocommit": False}) as pool:
        store = DocStore(pool, schema=schema)
        store.register("agent", dict)
        store.put("agent", "a", {"x": 1})
        store.put_many("agent", {"b": {}, "c": {}})
    with DocStore.connect(docstore_dsn, schema=schema) as other:
        other.register("agent", dict)
        assert sorted(d.name for d in other.list("agent")) == ["a", "b", "c"]


def test_prepared_statements_can_be_turned_off_for_pgbouncer(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    schema = docstore_factory().schema
    with DocStore.connect(docstore_dsn, schema=schema, prepare_threshold=None) as store:
        store.register("agent", dict)
        for i in range(10):  # past psycopg's default threshold of 5
            store.put("agent", "a", {"i": i})
        with store.pool.connection() as conn:
            prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        assert prepared == (0,)
        assert store.get("agent", "a").version == 10


def test_connect_to_a_dead_server_fails_fast_without_the_password() -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        DocStore.connect("postgresql://alice:s3cret-pw@127.0.0.1:1/app", timeout=2)
    assert "127.0.0.1:1/app" in str(info.value)
    assert "s3cret-pw" not in str(info.value) and "s3cret-pw" not in repr(info.value)


def test_repr_shows_where_the_store_is_but_never_the_password(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    store = docstore_factory()
    assert store.schema in repr(store) and "password" not in repr(store)


def test_compare_and_swap_race_8_threads_x_200_puts_gives_contiguous_versions(
    docstore_store: DocStore,
) -> None:
    s = docstore_store
    s.register("counter", dict)
    s.put("counter", "c", {"n": 0})
    wins: list[int] = []
    conflicts = [0]
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            current = s.get("counter", "c")
            try:
                doc = s.put("counter", "c", {"n": current.data["n"] + 1}, expected_version=current.version)
            except VersionConflict as exc:
                assert exc.actual > exc.expected
                with lock:
                    conflicts[0] += 1
            else:
                with lock:
                    wins.append(doc.version)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) + conflicts[0] == 1600
    assert sorted(wins) == list(range(2, len(wins) + 2))  # one version per success
    final = s.get("counter", "c")
    assert final.version == len(wins) + 1 and final.data["n"] == len(wins)
    assert [d.version for d in s.versions("counter", "c")] == list(range(1, final.version + 1))


@pytest.mark.slow
def test_iter_over_50000_documents_stays_within_bounded_memory(docstore_store: DocStore) -> None:
    s = docstore_store
    s.register("agent", dict)
    body = {"description": "x" * 400, "tools": [f"tool{i}" for i in range(20)]}
    for start in range(0, 50_000, 10_000):
        s.put_many("agent", {f"a{i:06}": {**body, "i": i} for i in range(start, start + 10_000)})
    tracemalloc.start()
    count = 0
    for doc in s.iter("agent", batch_size=500):
        count += 1
        assert doc.data["i"] == int(doc.name[1:])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 50_000
    # 50,000 documents of ~0.6 KB held at once would take well over 50 MB as dicts.
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.servers  # psql in a process of its own
def test_schema_sql_runs_as_it_is_under_psql(docstore_dsn: str, docstore_pool: Any) -> None:
    import shutil
    import subprocess
    import uuid

    schema = f"psql_{uuid.uuid4().hex[:8]}"
    psql = shutil.which("psql") or "/usr/bin/psql"
    try:
        for _ in range(2):  # and again: every statement is idempotent
            subprocess.run(
                [
                    psql,
                    docstore_dsn,
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-v",
                    f"schema={schema}",
                    "-f",
                    "schema.sql",
                ],
                check=True,
                capture_output=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
        store = DocStore(docstore_pool, schema=schema)
        assert store.init_schema() == 3
        store.register("agent", dict)
        assert store.put("agent", "a", {"x": 1}).version == 1
    finally:
        with docstore_pool.connection() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_large_values_are_compressed_with_lz4_where_the_server_has_it(docstore_store: DocStore) -> None:
    with docstore_store.pool.connection() as conn:
        has_lz4 = conn.execute(
            "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).fetchone()
        methods = conn.execute(
            "SELECT attcompression FROM pg_attribute WHERE attname = 'data' AND attrelid "
            "IN (%s::regclass, %s::regclass)",
            [f'"{docstore_store.schema}".documents', f'"{docstore_store.schema}".versions'],
        ).fetchall()
    assert methods == [("l",), ("l",)] if has_lz4 == (True,) else [("",), ("",)]


def test_the_store_leaves_the_connections_of_its_pool_as_they_were(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    schema = docstore_factory().schema
    with DocStore.connect(docstore_dsn, schema=schema, max_size=1) as store:
        store.register("agent", dict)
        store.put("agent", "a", {"x": 1})
        assert store.get("agent", "a").data == {"x": 1}
        with store.pool.connection() as conn:  # the very connection the store used
            row = conn.execute(f'SELECT data FROM "{schema}".documents WHERE name = %s', ["a"]).fetchone()
    assert row == ({"x": 1},)  # psycopg's own jsonb loading, not raw text


def test_export_is_one_snapshot_even_while_others_write(docstore_store: DocStore) -> None:
    s = docstore_store
    s.register("agent", dict)
    s.put_many("agent", {f"a{i}": {"i": i} for i in range(10)})
    lines = s.export(kinds=["agent"], batch_size=2)
    first = next(lines)
    s.put("agent", "a9", {"i": "changed"})  # a later page: must not show in this export
    s.put("agent", "zz", {"i": "new"})
    rest = list(lines)
    exported = [first, *rest]
    assert not any('"changed"' in line or '"zz"' in line for line in exported)
    assert sum('"t": "document"' in line or '"t":"document"' in line for line in exported) == 10
    assert len(list(s.export(kinds=["agent"]))) == 2 * 11 + 1  # heads + versions, after
