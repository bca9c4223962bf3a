# Generated from tests/test_spare_async.py by .ci/async_to_sync.py: do not edit.
# Change tests/test_spare_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""The pool a store opens keeps the connection last given back for the next taker (its
spare): a store's calls skip the pool's checkout, and everything else about the pool
holds (docstore._spare_async).

Each store here connects with an application_name of its own, so that its backends can
be told apart in pg_stat_activity.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from docstore import DocStore


@dataclass
class Named:
    store: DocStore
    app: str


def _connect(dsn: str, app: str, max_size: int) -> DocStore:
    store = DocStore.connect(
        make_conninfo(dsn, application_name=app), schema=app, min_size=1, max_size=max_size, timeout=3
    )
    store.init_schema()
    store.register("cfg", dict)
    store.register("chat", dict, mode="log")
    store.put("cfg", "a", {"n": 0})
    return store


@pytest.fixture
def named(docstore_dsn: str) -> Iterator[Named]:
    app = f"spare_{uuid.uuid4().hex[:12]}"
    store = _connect(docstore_dsn, app, 2)
    try:
        yield Named(store, app)
    finally:
        store.close()
        with psycopg.Connection.connect(docstore_dsn, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{app}" CASCADE')


def _backends(dsn: str, app: str) -> set[int]:
    with psycopg.Connection.connect(dsn, autocommit=True) as admin:
        cur = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [app])
        return {int(pid) for (pid,) in cur.fetchall()}


def _gone(dsn: str, pids: set[int]) -> bool:
    """Whether the backends ``pids`` have all ended, within a few seconds."""
    with psycopg.Connection.connect(dsn, autocommit=True) as admin:
        for _ in range(100):
            cur = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
            row = cur.fetchone()
            if row is not None and row[0] == 0:
                return True
            admin.execute("SELECT pg_sleep(0.05)")
    return False


def _checkouts(pool: ConnectionPool) -> int:
    """The pool's own checkouts (the spare's reuses are requests too)."""
    stats = pool.get_stats()
    return int(stats.get("requests_num", 0)) - int(stats.get("requests_spare", 0))


def test_back_to_back_calls_take_no_connection_from_the_pool(named: Named) -> None:
    store = named.store
    before = store.pool.get_stats()
    for i in range(20):
        store.put("cfg", "a", {"n": i + 1})
        assert (store.get("cfg", "a")).data == {"n": i + 1}
        store.append("chat", "c", [{"i": i}])
    after = store.pool.get_stats()
    assert after["requests_spare"] - before["requests_spare"] == 60  # each call took the spare
    assert after["requests_num"] - before["requests_num"] == 60
    assert len(store.read("chat", "c")) == 20


def test_a_store_on_a_pool_of_the_callers_own_takes_each_calls_connection_from_it(
    named: Named, docstore_dsn: str
) -> None:
    with ConnectionPool(docstore_dsn, min_size=1, max_size=1, open=False) as plain:
        plain.open(wait=True)
        given = DocStore(plain, schema=named.store.schema)
        given.register("cfg", dict)
        before = _checkouts(plain)
        for _ in range(5):
            assert (given.get("cfg", "a")).data == {"n": 0}
        assert _checkouts(plain) == before + 5


def test_the_pools_other_takers_take_the_spare_rather_than_wait_behind_it(
    named: Named, docstore_dsn: str
) -> None:
    app = f"spare_{uuid.uuid4().hex[:12]}"
    store = _connect(docstore_dsn, app, 1)  # the spare is its one connection
    try:
        assert store.pool.get_stats()["pool_available"] == 1  # the spare counts as available
        with store.pool.connection() as conn:
            conn.execute("SELECT 1")
            assert store.pool.get_stats().get("pool_available", 0) == 0
        with store.transaction():
            store.put("cfg", "b", {"n": 1})
        assert (store.get("cfg", "b")).data == {"n": 1}
    finally:
        store.close()
        with psycopg.Connection.connect(docstore_dsn, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{app}" CASCADE')


def test_a_pool_given_a_reset_callback_keeps_no_spare(named: Named, docstore_dsn: str) -> None:
    def reset(conn: psycopg.Connection[Any]) -> None:
        """Nothing to reset here: given, it must run on every return."""

    store = DocStore.connect(docstore_dsn, schema=named.store.schema, max_size=2, reset=reset)
    try:
        store.register("cfg", dict)
        before = _checkouts(store.pool)
        for _ in range(3):
            store.get("cfg", "a")
        assert _checkouts(store.pool) == before + 3  # each call through the pool
    finally:
        store.close()


def test_a_spare_whose_backend_was_terminated_is_replaced_without_an_error(
    named: Named, docstore_dsn: str
) -> None:
    old = _backends(docstore_dsn, named.app)
    assert old
    with psycopg.Connection.connect(docstore_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(old)])
    assert _gone(docstore_dsn, old)
    assert (named.store.get("cfg", "a")).data == {"n": 0}
    assert (_backends(docstore_dsn, named.app)).isdisjoint(old)


def test_dispose_lets_go_of_the_spare_too(named: Named, docstore_dsn: str) -> None:
    old = _backends(docstore_dsn, named.app)
    named.store.dispose()
    assert _gone(docstore_dsn, old)
    assert (named.store.get("cfg", "a")).data == {"n": 0}
    assert (_backends(docstore_dsn, named.app)).isdisjoint(old)


def test_close_closes_the_spare(named: Named, docstore_dsn: str) -> None:
    old = _backends(docstore_dsn, named.app)
    assert old
    named.store.close()
    assert _gone(docstore_dsn, old)


def test_a_transaction_finds_a_connection_while_the_spare_and_another_hold_the_pool(
    named: Named,
) -> None:
    store = named.store  # a pool of two: the spare, and one the caller holds below
    with store.pool.connection():
        with store.transaction():
            store.put("cfg", "b", {"n": 1})
        assert (store.get("cfg", "b")).data == {"n": 1}
