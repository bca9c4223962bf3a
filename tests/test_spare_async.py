"""The pool a store opens keeps the connection last given back for the next taker (its
spare): a store's calls skip the pool's checkout, and everything else about the pool
holds (docstore._spare_async).

Each store here connects with an application_name of its own, so that its backends can
be told apart in pg_stat_activity.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from docstore import AsyncDocStore


@dataclass
class Named:
    store: AsyncDocStore
    app: str


async def _connect(dsn: str, app: str, max_size: int) -> AsyncDocStore:
    store = await AsyncDocStore.connect(
        make_conninfo(dsn, application_name=app), schema=app, min_size=1, max_size=max_size, timeout=3
    )
    await store.init_schema()
    store.register("cfg", dict)
    store.register("chat", dict, mode="log")
    await store.put("cfg", "a", {"n": 0})
    return store


@pytest.fixture
async def named(docstore_dsn: str) -> AsyncIterator[Named]:
    app = f"spare_{uuid.uuid4().hex[:12]}"
    store = await _connect(docstore_dsn, app, 2)
    try:
        yield Named(store, app)
    finally:
        await store.close()
        async with await psycopg.AsyncConnection.connect(docstore_dsn, autocommit=True) as admin:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{app}" CASCADE')


async def _backends(dsn: str, app: str) -> set[int]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        cur = await admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [app])
        return {int(pid) for (pid,) in await cur.fetchall()}


async def _gone(dsn: str, pids: set[int]) -> bool:
    """Whether the backends ``pids`` have all ended, within a few seconds."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        for _ in range(100):
            cur = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)]
            )
            row = await cur.fetchone()
            if row is not None and row[0] == 0:
                return True
            await admin.execute("SELECT pg_sleep(0.05)")
    return False


def _checkouts(pool: AsyncConnectionPool) -> int:
    """The pool's own checkouts (the spare's reuses are requests too)."""
    stats = pool.get_stats()
    return int(stats.get("requests_num", 0)) - int(stats.get("requests_spare", 0))


async def test_back_to_back_calls_take_no_connection_from_the_pool(named: Named) -> None:
    store = named.store
    before = store.pool.get_stats()
    for i in range(20):
        await store.put("cfg", "a", {"n": i + 1})
        assert (await store.get("cfg", "a")).data == {"n": i + 1}
        await store.append("chat", "c", [{"i": i}])
    after = store.pool.get_stats()
    assert after["requests_spare"] - before["requests_spare"] == 60  # each call took the spare
    assert after["requests_num"] - before["requests_num"] == 60
    assert len(await store.read("chat", "c")) == 20


async def test_a_store_on_a_pool_of_the_callers_own_takes_each_calls_connection_from_it(
    named: Named, docstore_dsn: str
) -> None:
    async with AsyncConnectionPool(docstore_dsn, min_size=1, max_size=1, open=False) as plain:
        await plain.open(wait=True)
        given = AsyncDocStore(plain, schema=named.store.schema)
        given.register("cfg", dict)
        before = _checkouts(plain)
        for _ in range(5):
            assert (await given.get("cfg", "a")).data == {"n": 0}
        assert _checkouts(plain) == before + 5


async def test_the_pools_other_takers_take_the_spare_rather_than_wait_behind_it(
    named: Named, docstore_dsn: str
) -> None:
    app = f"spare_{uuid.uuid4().hex[:12]}"
    store = await _connect(docstore_dsn, app, 1)  # the spare is its one connection
    try:
        assert store.pool.get_stats()["pool_available"] == 1  # the spare counts as available
        async with store.pool.connection() as conn:
            await conn.execute("SELECT 1")
            assert store.pool.get_stats().get("pool_available", 0) == 0
        async with store.transaction():
            await store.put("cfg", "b", {"n": 1})
        assert (await store.get("cfg", "b")).data == {"n": 1}
    finally:
        await store.close()
        async with await psycopg.AsyncConnection.connect(docstore_dsn, autocommit=True) as admin:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{app}" CASCADE')


async def test_a_pool_given_a_reset_callback_keeps_no_spare(named: Named, docstore_dsn: str) -> None:
    async def reset(conn: psycopg.AsyncConnection[Any]) -> None:
        """Nothing to reset here: given, it must run on every return."""

    store = await AsyncDocStore.connect(docstore_dsn, schema=named.store.schema, max_size=2, reset=reset)
    try:
        store.register("cfg", dict)
        before = _checkouts(store.pool)
        for _ in range(3):
            await store.get("cfg", "a")
        assert _checkouts(store.pool) == before + 3  # each call through the pool
    finally:
        await store.close()


async def test_a_spare_whose_backend_was_terminated_is_replaced_without_an_error(
    named: Named, docstore_dsn: str
) -> None:
    old = await _backends(docstore_dsn, named.app)
    assert old
    async with await psycopg.AsyncConnection.connect(docstore_dsn, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(old)])
    assert await _gone(docstore_dsn, old)
    assert (await named.store.get("cfg", "a")).data == {"n": 0}
    assert (await _backends(docstore_dsn, named.app)).isdisjoint(old)


async def test_dispose_lets_go_of_the_spare_too(named: Named, docstore_dsn: str) -> None:
    old = await _backends(docstore_dsn, named.app)
    await named.store.dispose()
    assert await _gone(docstore_dsn, old)
    assert (await named.store.get("cfg", "a")).data == {"n": 0}
    assert (await _backends(docstore_dsn, named.app)).isdisjoint(old)


async def test_close_closes_the_spare(named: Named, docstore_dsn: str) -> None:
    old = await _backends(docstore_dsn, named.app)
    assert old
    await named.store.close()
    assert await _gone(docstore_dsn, old)


async def test_a_transaction_finds_a_connection_while_the_spare_and_another_hold_the_pool(
    named: Named,
) -> None:
    store = named.store  # a pool of two: the spare, and one the caller holds below
    async with store.pool.connection():
        async with store.transaction():
            await store.put("cfg", "b", {"n": 1})
        assert (await store.get("cfg", "b")).data == {"n": 1}
