"""Faults: backends killed between and during calls, statement timeouts.

Every store here is opened with its own ``application_name``, so a test can find its
backends in ``pg_stat_activity`` and terminate exactly those (never another test's).
The server restart lives in test_reliability_restart.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from conftest import count_rows
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from docstore import AsyncDocStore, DatabaseUnavailable, DocStore
from docstore.errors import DocStoreError, LimitExceeded


class Config(BaseModel):
    value: int


class Message(BaseModel):
    role: str
    content: str


def _app() -> str:
    return f"docstore-fault-{uuid.uuid4().hex[:10]}"


def terminate(admin: ConnectionPool[Any], app: str) -> int:
    """Terminate every backend of ``app`` and wait until each has exited."""
    with admin.connection() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            [app],
        ).fetchall()
    assert all(ok for (ok,) in rows)
    return len(rows)


def wait_until_blocked(admin: ConnectionPool[Any], app: str, deadline: float = 20) -> None:
    """Wait until a backend of ``app`` waits on a lock (fails after ``deadline`` s)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with admin.connection() as conn:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock'",
                [app],
            ).fetchone()[0]
        if waiting:
            return
        time.sleep(0.02)
    pytest.fail(f"no backend of {app} ever waited on the lock")


@pytest.fixture
def schema(docstore_factory: Callable[..., DocStore]) -> str:
    return docstore_factory().schema


@pytest.fixture
def open_store(docstore_dsn: str, schema: str) -> Iterator[Callable[..., tuple[DocStore, str]]]:
    """``open_store(**options) -> (store, application_name)``: a store of its own pool."""
    opened: list[DocStore] = []

    def make(**options: Any) -> tuple[DocStore, str]:
        app = _app()
        options.setdefault("max_size", 2)
        store = DocStore.connect(docstore_dsn, schema=schema, kwargs={"application_name": app}, **options)
        store.register("config", Config)
        store.register("chat", Message, mode="log")
        opened.append(store)
        return store, app

    yield make
    for store in opened:
        store.close()


def test_backend_terminated_between_calls_next_read_and_write_succeed(
    open_store: Callable[..., tuple[DocStore, str]], docstore_pool: ConnectionPool[Any]
) -> None:
    store, app = open_store(min_size=1, max_size=1)
    store.put("config", "a", {"value": 1})
    assert terminate(docstore_pool, app) == 1
    assert store.get("config", "a").data.value == 1  # a read
    assert terminate(docstore_pool, app) == 1
    assert store.put("config", "a", {"value": 2}).version == 2  # a write, not retried
    assert terminate(docstore_pool, app) == 1
    assert store.append("chat", "s", [{"role": "user", "content": "hi"}]) == 1
    assert store.get("config", "a").version == 2


def test_every_pooled_backend_terminated_between_calls_the_store_recovers(
    open_store: Callable[..., tuple[DocStore, str]], docstore_pool: ConnectionPool[Any]
) -> None:
    store, app = open_store(min_size=4, max_size=4)
    store.pool.wait()
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: store.put("config", f"d{i}", {"value": i}), range(8)))
    assert terminate(docstore_pool, app) >= 1
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda i: store.put("config", f"d{i}", {"value": i + 100}), range(8)))
    assert [d.version for d in got] == [2] * 8


async def test_async_store_backend_terminated_between_calls_next_calls_succeed(
    docstore_dsn: str, schema: str, docstore_pool: ConnectionPool[Any]
) -> None:
    app = _app()
    async with await AsyncDocStore.connect(
        docstore_dsn, schema=schema, min_size=1, max_size=1, kwargs={"application_name": app}
    ) as store:
        store.register("config", Config)
        await store.put("config", "a", {"value": 1})
        await asyncio.to_thread(terminate, docstore_pool, app)
        assert (await store.get("config", "a")).data.value == 1
        await asyncio.to_thread(terminate, docstore_pool, app)
        assert (await store.put("config", "a", {"value": 2})).version == 2


class _RowLock:
    """Holds ``FOR UPDATE`` on one head row from a connection of its own."""

    def __init__(self, dsn: str, schema: str, kind: str, name: str) -> None:
        self.conn = psycopg.connect(dsn)
        self.conn.execute(
            sql.SQL("SELECT 1 FROM {}.documents WHERE kind = %s AND name = %s FOR UPDATE").format(
                sql.Identifier(schema)
            ),
            [kind, name],
        )

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _kill_while_blocked(
    store_call: Callable[[], Any], lock: _RowLock, app: str, admin: ConnectionPool[Any]
) -> BaseException:
    """Run ``store_call`` in a thread; once it waits on ``lock``, kill its backend."""
    with ThreadPoolExecutor(1) as ex:
        fut: Future[Any] = ex.submit(store_call)
        try:
            wait_until_blocked(admin, app)
            assert terminate(admin, app) >= 1
        finally:
            lock.release()
        exc = fut.exception(timeout=30)
    assert exc is not None, "the call succeeded although its backend was killed"
    return exc


def test_backend_terminated_in_the_middle_of_put_many_stores_nothing_and_says_retry(
    open_store: Callable[..., tuple[DocStore, str]], docstore_dsn: str, docstore_pool: ConnectionPool[Any]
) -> None:
    store, app = open_store()
    store.put("config", "m", {"value": 0})
    batch = {f"{c}": {"value": 1} for c in "abcdefghijklmnopqrstuvwxyz"}  # "m" is in it
    lock = _RowLock(docstore_dsn, store.schema, "config", "m")
    exc = _kill_while_blocked(lambda: store.put_many("config", batch), lock, app, docstore_pool)
    assert isinstance(exc, DatabaseUnavailable), repr(exc)
    assert "safe to retry" in str(exc)
    # Nothing of the batch: no new heads, no new versions, "m" untouched.
    assert count_rows(store, "documents", "config") == 1
    assert count_rows(store, "versions", "config") == 1
    assert store.get("config", "m").version == 1
    # The retry the error invites succeeds, on the same store.
    assert [d.version for d in store.put_many("config", batch)] == [2 if n == "m" else 1 for n in batch]


def test_backend_terminated_in_the_middle_of_an_append_stores_nothing_and_says_retry(
    open_store: Callable[..., tuple[DocStore, str]], docstore_dsn: str, docstore_pool: ConnectionPool[Any]
) -> None:
    store, app = open_store()
    store.append("chat", "s", [{"role": "user", "content": "first"}])
    items = [{"role": "assistant", "content": f"part {i}"} for i in range(50)]
    lock = _RowLock(docstore_dsn, store.schema, "chat", "s")
    exc = _kill_while_blocked(lambda: store.append("chat", "s", items), lock, app, docstore_pool)
    assert isinstance(exc, DatabaseUnavailable), repr(exc)
    assert "safe to retry" in str(exc)
    assert count_rows(store, "versions", "chat", "s") == 1
    assert store.get("chat", "s").version == 1
    assert store.append("chat", "s", items) == 51
    assert [m.content for m in store.read("chat", "s")] == ["first"] + [i["content"] for i in items]


def test_backend_terminated_inside_a_transaction_block_rolls_back_every_write(
    open_store: Callable[..., tuple[DocStore, str]], docstore_pool: ConnectionPool[Any]
) -> None:
    store, app = open_store(min_size=1, max_size=1)
    store.put("config", "keep", {"value": 1})
    with pytest.raises(DatabaseUnavailable), store.transaction():
        store.put("config", "keep", {"value": 2})
        store.put("config", "new", {"value": 1})
        # Killed from another thread, as a crash of the server process would be.
        t = threading.Thread(target=terminate, args=(docstore_pool, app))
        t.start()
        t.join()
        store.put("config", "later", {"value": 1})
    assert count_rows(store, "documents", "config") == 1
    assert store.get("config", "keep").version == 1
    assert store.put("config", "new", {"value": 1}).version == 1


def test_statement_timeout_cancels_a_blocked_write_with_a_clear_error_and_writes_nothing(
    open_store: Callable[..., tuple[DocStore, str]], docstore_dsn: str
) -> None:
    store, _app = open_store(statement_timeout=0.2)
    store.put("config", "a", {"value": 1})
    lock = _RowLock(docstore_dsn, store.schema, "config", "a")
    try:
        with pytest.raises(DatabaseUnavailable, match="statement timeout"):
            store.put("config", "a", {"value": 2})
        with pytest.raises(DatabaseUnavailable, match="statement timeout"):
            store.put_many("config", {"a": {"value": 3}, "b": {"value": 3}})
    finally:
        lock.release()
    assert count_rows(store, "versions", "config") == 1
    assert store.put("config", "a", {"value": 2}).version == 2  # the connection is fine


def test_statement_timeout_cancels_a_blocked_read(
    open_store: Callable[..., tuple[DocStore, str]], docstore_dsn: str
) -> None:
    store, _app = open_store(statement_timeout=0.2)
    store.put("config", "a", {"value": 1})
    blocker = psycopg.connect(docstore_dsn)
    try:
        blocker.execute(
            sql.SQL("LOCK TABLE {}.documents IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(store.schema))
        )
        with pytest.raises(DatabaseUnavailable, match="statement timeout"):
            store.get("config", "a")
    finally:
        blocker.rollback()
        blocker.close()
    assert store.get("config", "a").data.value == 1


def test_statement_timeout_is_set_on_every_pooled_connection_and_keeps_dsn_options(
    docstore_dsn: str, schema: str
) -> None:
    dsn = docstore_dsn + " options='-c search_path=public'"
    with DocStore.connect(dsn, schema=schema, min_size=2, max_size=2, statement_timeout=1.5) as store:
        store.pool.wait()
        for _ in range(2):
            with store.pool.connection() as conn:
                assert conn.execute("SHOW statement_timeout").fetchone() == ("1500ms",)
                assert conn.execute("SHOW search_path").fetchone() == ("public",)


async def test_async_store_honours_statement_timeout(docstore_dsn: str, schema: str) -> None:
    async with await AsyncDocStore.connect(docstore_dsn, schema=schema, statement_timeout=0.2) as store:
        store.register("config", Config)
        await store.put("config", "a", {"value": 1})
        lock = await asyncio.to_thread(_RowLock, docstore_dsn, schema, "config", "a")
        try:
            with pytest.raises(DatabaseUnavailable, match="statement timeout"):
                await store.put("config", "a", {"value": 2})
        finally:
            lock.release()
        assert (await store.get("config", "a")).version == 1


@pytest.mark.parametrize("bad", [0, -1, "5s", True])
def test_statement_timeout_must_be_positive_seconds(docstore_dsn: str, bad: Any) -> None:
    with pytest.raises(ValueError, match="statement_timeout"):
        DocStore.connect(docstore_dsn, statement_timeout=bad)


def test_a_dead_connection_error_is_a_docstore_error_not_a_psycopg_one(
    open_store: Callable[..., tuple[DocStore, str]], docstore_dsn: str, docstore_pool: ConnectionPool[Any]
) -> None:
    store, app = open_store()
    store.put("config", "a", {"value": 1})
    lock = _RowLock(docstore_dsn, store.schema, "config", "a")
    exc = _kill_while_blocked(lambda: store.delete("config", "a"), lock, app, docstore_pool)
    assert isinstance(exc, DocStoreError) and not isinstance(exc, psycopg.Error)
    assert store.get("config", "a").version == 1


def test_a_statement_over_a_postgresql_limit_is_reported_as_such_and_not_run_again(
    open_store: Callable[..., tuple[DocStore, str]], docstore_dsn: str
) -> None:
    # psycopg files class 54 (program limit exceeded) under OperationalError, which read
    # as a connection failure that is "safe to retry"; the same statement fails again.
    store, _app_name = open_store()
    with psycopg.connect(docstore_dsn) as conn, pytest.raises(psycopg.OperationalError) as raised:
        conn.execute("SELECT array_fill(1, ARRAY[200000000])")
    exc = raised.value
    assert exc.sqlstate == "54000"
    core = store._core
    for op in (
        core.get("config", "a", None),
        core.put("config", "a", {"value": 1}, None, idempotency_key="k"),
        core.put("config", "a", {"value": 1}, None),
    ):
        error = core.failure(exc, op, 1, False, True)
        assert error is not None, "a limit was taken for a failure worth running again"
        assert type(error) is LimitExceeded
        assert "config 'a': over a limit of PostgreSQL (array size exceeds" in str(error)
        assert "run again as it is, it would meet the same limit" in str(error)


def test_an_append_past_the_json_array_size_sends_a_jsonb_array_and_stores_the_same(
    open_store: Callable[..., tuple[DocStore, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One jsonb value holds at most 256 MiB; past ITEMS_ARRAY_OVER bytes the items go as
    # a jsonb[] (each element capped, not their sum). Lowered here to take that path.
    from docstore import _sql

    store, _app_name = open_store()
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    assert store.append("chat", "json", items) == 5
    monkeypatch.setattr(_sql, "ITEMS_ARRAY_OVER", 10)
    sent = next(store._core.append("chat", "array", items, None, None).plan())
    assert sent.params is not None and isinstance(sent.params["items"], list)
    assert "unnest(%(items)b::jsonb[])" in sent.query
    assert store.append("chat", "array", items) == 5
    assert store.append("chat", "array", items[:1]) == 6
    assert store.read("chat", "array")[:5] == store.read("chat", "json")
    assert store.read("chat", "array").versions == [1, 2, 3, 4, 5, 6]
