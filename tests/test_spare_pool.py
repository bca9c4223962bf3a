"""The spare pool (docstore._spare) keeps psycopg_pool's promises: drain, lifetime,
close, refused returns, waiters served, statistics. Each test names the promise a
store-level spare once broke (a review proved them broken, with scripts like these)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolClosed, PoolTimeout

from docstore import _spare
from docstore._spare import SparePool
from docstore._spare_async import AsyncSparePool


@pytest.fixture
def pool(docstore_dsn: str) -> Iterator[SparePool]:
    with SparePool(docstore_dsn, min_size=1, max_size=2, timeout=2, kwargs={"autocommit": True}) as made:
        made.wait()
        yield made


def test_a_connection_out_during_drain_is_not_kept_when_it_comes_back(pool: SparePool) -> None:
    out = pool.getconn()
    pool.drain()
    pool.putconn(out)
    again = pool.getconn()
    try:
        assert again is not out and out.closed
    finally:
        pool.putconn(again)


def test_the_spare_at_drain_is_replaced(pool: SparePool) -> None:
    first = pool.getconn()
    pool.putconn(first)  # the spare
    pool.drain()
    again = pool.getconn()
    try:
        assert again is not first and first.closed
    finally:
        pool.putconn(again)


def test_a_connection_is_not_kept_out_of_the_pool_past_its_lifetime_by_callers_taking_turns(
    docstore_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two threads taking turns keep swapping the spare; each connection must still go
    # back through the pool within SPARE_FOR of leaving it, where max_lifetime applies.
    monkeypatch.setattr(_spare, "SPARE_FOR", 0.2)
    born: dict[int, float] = {}
    oldest = 0.0
    lock = threading.Lock()
    with SparePool(
        docstore_dsn, min_size=2, max_size=2, max_lifetime=0.5, kwargs={"autocommit": True}
    ) as pool:
        pool.wait()

        def turns() -> None:
            nonlocal oldest
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                with pool.connection() as conn:
                    now = time.monotonic()
                    with lock:
                        age = now - born.setdefault(conn.info.backend_pid, now)
                        oldest = max(oldest, age)
                    time.sleep(0.002)

        threads = [threading.Thread(target=turns) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # max_lifetime 0.5 (the pool adds up to 5% jitter), a spare stint 0.2, and slack.
    assert oldest < 1.2, f"a connection was handed out {oldest:.2f} s after it was first seen"
    assert len(born) > 2


def test_a_waiter_on_a_pool_of_one_gets_the_connection_whatever_the_threads_interleaving(
    docstore_dsn: str,
) -> None:
    errors: list[BaseException] = []
    with SparePool(docstore_dsn, min_size=1, max_size=1, timeout=2, kwargs={"autocommit": True}) as pool:
        pool.wait()

        def churn() -> None:
            try:
                for _ in range(300):
                    with pool.connection() as conn:
                        conn.execute("SELECT 1")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=churn) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_close_closes_the_spare_and_a_connection_given_back_after_it(docstore_dsn: str) -> None:
    pool = SparePool(docstore_dsn, min_size=2, max_size=2, timeout=2, kwargs={"autocommit": True}, open=False)
    pool.open(wait=True)
    kept, out = pool.getconn(), pool.getconn()
    pool.putconn(kept)  # the spare
    pool.close()
    pool.putconn(out)
    assert kept.closed and out.closed
    with pytest.raises(PoolClosed):
        pool.getconn()


def test_a_connection_given_back_twice_is_refused(pool: SparePool) -> None:
    spare, other = pool.getconn(), pool.getconn()
    pool.putconn(spare)  # kept as the spare
    with pytest.raises(ValueError):
        pool.putconn(spare)
    pool.putconn(other)  # into the pool's queue: the spare is taken
    with pytest.raises(ValueError):
        pool.putconn(other)
    first, second = pool.getconn(), pool.getconn()
    try:
        assert first is not second
    finally:
        pool.putconn(first)
        pool.putconn(second)


def test_a_connection_of_no_pool_is_refused(pool: SparePool, docstore_dsn: str) -> None:
    with psycopg.connect(docstore_dsn, autocommit=True) as foreign, pytest.raises(ValueError):
        pool.putconn(foreign)
    conn = pool.getconn()
    try:
        assert conn is not foreign
    finally:
        pool.putconn(conn)


def test_a_connection_left_in_a_transaction_is_not_kept(pool: SparePool) -> None:
    conn = pool.getconn()
    conn.execute("BEGIN")
    pool.putconn(conn)  # the pool rolls it back
    again = pool.getconn()
    try:
        assert again.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        pool.putconn(again)


def test_the_statistics_count_the_spare(pool: SparePool) -> None:
    conn = pool.getconn()
    pool.putconn(conn)
    before: dict[str, Any] = pool.get_stats()
    assert before["pool_available"] >= 1
    for _ in range(5):
        with pool.connection():
            pass
    after = pool.get_stats()
    assert after["requests_spare"] - before["requests_spare"] == 5
    assert after["requests_num"] - before["requests_num"] == 5
    assert pool.pop_stats()["requests_spare"] == after["requests_spare"]
    assert pool.get_stats()["requests_spare"] == 0


def test_a_full_pool_still_times_out_for_a_taker_beyond_it(docstore_dsn: str) -> None:
    with SparePool(docstore_dsn, min_size=1, max_size=1, timeout=0.3, kwargs={"autocommit": True}) as pool:
        held = pool.getconn()
        try:
            with pytest.raises(PoolTimeout):
                pool.getconn()
        finally:
            pool.putconn(held)


def test_a_connection_handed_to_a_waiter_as_drain_runs_is_not_kept_after_it(docstore_dsn: str) -> None:
    async def main() -> tuple[bool, bool]:
        async with AsyncSparePool(
            docstore_dsn, min_size=1, max_size=1, timeout=2, open=False, kwargs={"autocommit": True}
        ) as pool:
            await pool.open(wait=True)
            out = await pool.getconn()
            waiter = asyncio.create_task(pool.getconn())
            await asyncio.sleep(0.05)  # waiting: the pool has no other connection
            await pool.putconn(out)  # to the waiter
            await pool.drain()  # before the waiter resumes: out must not be used again
            got = await waiter
            await pool.putconn(got)
            again = await pool.getconn()
            await pool.putconn(again)
            return got is out, again is out

    handed, reused = asyncio.run(main())
    assert handed and not reused


def test_a_connection_given_back_twice_after_its_spare_time_is_refused(
    docstore_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spare, "SPARE_FOR", 0.2)
    with SparePool(docstore_dsn, min_size=1, max_size=1, timeout=0.5, kwargs={"autocommit": True}) as pool:
        conn = pool.getconn()
        pool.putconn(conn)  # the spare
        time.sleep(0.3)
        with pytest.raises(ValueError):
            pool.putconn(conn)
        first = pool.getconn()
        try:
            with pytest.raises(PoolTimeout):  # one connection, one holder
                pool.getconn()
        finally:
            pool.putconn(first)


def test_another_spare_pools_connection_is_refused(docstore_dsn: str) -> None:
    with (
        SparePool(docstore_dsn, min_size=1, max_size=1, timeout=0.5, kwargs={"autocommit": True}) as one,
        SparePool(docstore_dsn, min_size=1, max_size=1, timeout=0.5, kwargs={"autocommit": True}) as two,
    ):
        conn = one.getconn()
        with pytest.raises(ValueError):
            two.putconn(conn)
        one.putconn(conn)
        again = one.getconn()  # one still has its connection
        one.putconn(again)


def test_a_spare_left_idle_past_its_time_goes_back_through_the_pool(
    docstore_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spare, "SPARE_FOR", 0.2)
    with SparePool(
        docstore_dsn, min_size=1, max_size=1, max_lifetime=0.5, timeout=2, kwargs={"autocommit": True}
    ) as pool:
        old = pool.getconn()
        pool.putconn(old)  # the spare
        time.sleep(1.0)  # past its spare time and its lifetime
        new = pool.getconn()
        try:
            assert new is not old and old.closed
        finally:
            pool.putconn(new)


def test_a_spare_pool_refuses_reset_and_close_returns(docstore_dsn: str) -> None:
    def reset(conn: psycopg.Connection[Any]) -> None:
        """Would have to run on every return."""

    with pytest.raises(ValueError, match="reset"):
        SparePool(docstore_dsn, open=False, reset=reset)
    with pytest.raises(ValueError, match="close_returns"):
        SparePool(docstore_dsn, open=False, close_returns=True)
