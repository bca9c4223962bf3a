"""A lost reply after a commit: the error says the outcome is unknown, and a retry with
the same idempotency_key returns what the first attempt wrote and writes nothing more.

A TCP proxy of the test's own (tests/proxy.py) forwards each write to the server, lets it
commit, and throws the reply away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import count_rows
from proxy import LossyProxy
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel

from docstore import (
    AsyncDocStore,
    DatabaseUnavailable,
    DocStore,
    IdempotencyKeyReused,
    OutcomeUnknown,
)


class Config(BaseModel):
    value: int


class Message(BaseModel):
    text: str


@pytest.fixture
def lossy(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> Iterator[tuple[LossyProxy, DocStore, DocStore]]:
    """(proxy, a store through the proxy, a direct store on the same schema)."""
    direct = docstore_factory()
    info = conninfo_to_dict(docstore_dsn)
    with LossyProxy(int(info.get("port") or 5432), str(info.get("host") or "127.0.0.1")) as proxy:
        store = DocStore.connect(
            proxy.dsn(str(info["dbname"]), str(info.get("user") or "postgres")),
            schema=direct.schema,
            min_size=1,
            max_size=2,
            timeout=5,
            prepare_threshold=None,
        )
        try:
            for s in (store, direct):
                s.register("config", Config)
                s.register("chat", Message, mode="log")
            store.put("config", "warm", {"value": 0})
            yield proxy, store, direct
        finally:
            store.close()


def test_a_lost_reply_to_a_write_says_the_outcome_is_unknown_not_safe_to_retry(
    lossy: tuple[LossyProxy, DocStore, DocStore],
) -> None:
    proxy, store, direct = lossy
    proxy.drop_replies(1)
    with pytest.raises(OutcomeUnknown) as err:
        store.append("chat", "c", [{"text": "hi"}])
    message = str(err.value)
    assert "chat 'c'" in message and "unknown" in message and "idempotency_key" in message
    assert "safe to retry" not in message
    assert isinstance(err.value, DatabaseUnavailable)
    assert direct.read("chat", "c") == [Message(text="hi")]  # it did commit


def test_a_lost_reply_to_a_read_is_retried_by_itself(lossy: tuple[LossyProxy, DocStore, DocStore]) -> None:
    proxy, store, _ = lossy
    proxy.drop_replies(1, writes_only=False)
    assert store.get("config", "warm").version == 1
    assert proxy.dropped == 1


@pytest.mark.parametrize("drops", [1, 2])
def test_append_with_a_key_after_a_lost_reply_stores_its_items_once(
    lossy: tuple[LossyProxy, DocStore, DocStore], drops: int
) -> None:
    proxy, store, direct = lossy
    store.append("chat", "c", [{"text": "first"}])
    proxy.drop_replies(drops)
    items = [{"text": "a"}, {"text": "b"}]
    if drops == 1:
        # docstore runs a keyed write once more by itself, on a fresh connection.
        assert store.append("chat", "c", items, idempotency_key="k-1") == 3
    else:
        with pytest.raises(OutcomeUnknown):
            store.append("chat", "c", items, idempotency_key="k-1")
        assert store.append("chat", "c", items, idempotency_key="k-1") == 3
    assert proxy.dropped == drops
    assert [m.text for m in direct.read("chat", "c")] == ["first", "a", "b"]
    assert count_rows(direct, "versions", "chat", "c") == 3
    # Later, the same key again still answers the first write.
    store.append("chat", "c", [{"text": "z"}])
    assert store.append("chat", "c", items, idempotency_key="k-1") == 3
    assert direct.get("chat", "c").version == 4


def test_a_cas_put_retried_with_its_key_after_a_lost_reply_is_no_conflict(
    lossy: tuple[LossyProxy, DocStore, DocStore],
) -> None:
    proxy, store, direct = lossy
    first = store.put("config", "a", {"value": 1})
    proxy.drop_replies(2)
    with pytest.raises(OutcomeUnknown):
        store.put("config", "a", {"value": 2}, expected_version=first.version, idempotency_key="p")
    again = store.put("config", "a", {"value": 2}, expected_version=first.version, idempotency_key="p")
    assert again.version == 2 and again.data == Config(value=2)
    now = direct.get("config", "a")
    assert (now.version, now.updated_at, now.created_at) == (2, again.updated_at, again.created_at)
    assert count_rows(direct, "versions", "config", "a") == 2


def test_a_cas_append_rewrite_and_delete_retried_with_their_keys_write_once(
    lossy: tuple[LossyProxy, DocStore, DocStore],
) -> None:
    proxy, store, direct = lossy
    v = store.append("chat", "c", [{"text": "one"}])
    for attempt in range(2):
        if attempt == 0:
            proxy.drop_replies(2)
            with pytest.raises(OutcomeUnknown):
                store.append("chat", "c", [{"text": "two"}], expected_version=v, idempotency_key="a")
        assert store.append("chat", "c", [{"text": "two"}], expected_version=v, idempotency_key="a") == 2
    for attempt in range(2):
        if attempt == 0:
            proxy.drop_replies(2)
            with pytest.raises(OutcomeUnknown):
                store.rewrite("chat", "c", [{"text": "new"}], expected_version=2, idempotency_key="r")
        assert store.rewrite("chat", "c", [{"text": "new"}], expected_version=2, idempotency_key="r") == 3
    assert [m.text for m in direct.read("chat", "c")] == ["new"]
    store.put("config", "gone", {"value": 1})
    for attempt in range(2):
        if attempt == 0:
            proxy.drop_replies(2)
            with pytest.raises(OutcomeUnknown):
                store.delete("config", "gone", expected_version=1, idempotency_key="d")
        assert store.delete("config", "gone", expected_version=1, idempotency_key="d") == 2
    for attempt in range(2):
        if attempt == 0:
            proxy.drop_replies(2)
            with pytest.raises(OutcomeUnknown):
                store.delete("chat", "c", idempotency_key="dl")
        assert store.delete("chat", "c", idempotency_key="dl") == 3
    assert count_rows(direct, "versions", "config", "gone") == 2
    assert count_rows(direct, "versions", "chat", "c") == 3


def test_a_reused_key_with_different_data_is_a_clear_error(docstore_store: DocStore) -> None:
    store = docstore_store
    store.register("config", Config)
    store.register("chat", Message, mode="log")
    store.put("config", "a", {"value": 1}, idempotency_key="same")
    with pytest.raises(IdempotencyKeyReused) as err:
        store.put("config", "a", {"value": 2}, idempotency_key="same")
    assert "'same'" in str(err.value) and "config 'a'" in str(err.value)
    with pytest.raises(IdempotencyKeyReused):
        store.put("config", "b", {"value": 1}, idempotency_key="same")
    with pytest.raises(IdempotencyKeyReused):
        store.append("chat", "c", [{"text": "x"}], idempotency_key="same")
    assert store.get("config", "a").version == 1
    assert count_rows(store, "documents", "chat") == 0
    with pytest.raises(ValueError, match="idempotency_key"):
        store.put("config", "a", {"value": 3}, idempotency_key="")


def test_a_keyed_put_of_the_stored_value_still_holds_its_key(docstore_store: DocStore) -> None:
    """It writes nothing, but a retry with its key after someone else's write must return
    what it returned then, not write the value again over the newer one."""
    store = docstore_store
    store.register("config", Config)
    store.put("config", "a", {"value": 1})
    first = store.put("config", "a", {"value": 1}, idempotency_key="unchanged")
    assert first.version == 1
    store.put("config", "a", {"value": 2})  # another writer moves the document on
    again = store.put("config", "a", {"value": 1}, idempotency_key="unchanged")
    assert (again.version, again.created_at, again.updated_at) == (1, first.created_at, first.updated_at)
    current = store.get("config", "a")
    assert (current.version, current.data.value) == (2, 2)
    with pytest.raises(IdempotencyKeyReused):
        store.put("config", "a", {"value": 3}, idempotency_key="unchanged")


def test_two_writers_racing_with_one_key_write_once(docstore_store: DocStore) -> None:
    store = docstore_store
    store.register("chat", Message, mode="log")
    import threading

    results: list[int] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(store.append("chat", "c", [{"text": "x"}], idempotency_key="race"))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1] * 8
    assert count_rows(store, "versions", "chat", "c") == 1


def test_async_store_retries_a_keyed_write_after_a_lost_reply(
    lossy: tuple[LossyProxy, DocStore, DocStore], docstore_dsn: str
) -> None:
    proxy, _store, direct = lossy
    info = conninfo_to_dict(docstore_dsn)

    async def main() -> Any:
        astore = await AsyncDocStore.connect(
            proxy.dsn(str(info["dbname"]), str(info.get("user") or "postgres")),
            schema=direct.schema,
            min_size=1,
            max_size=2,
            timeout=5,
            prepare_threshold=None,
        )
        try:
            astore.register("chat", Message, mode="log")
            await astore.append("chat", "c", [{"text": "warm"}])
            proxy.drop_replies(2)
            with pytest.raises(OutcomeUnknown):
                await astore.append("chat", "c", [{"text": "x"}], idempotency_key="ak")
            return await astore.append("chat", "c", [{"text": "x"}], idempotency_key="ak")
        finally:
            await astore.close()

    assert asyncio.run(main()) == 2
    assert count_rows(direct, "versions", "chat", "c") == 2


def test_keys_are_remembered_until_prune_passes_their_write_time(docstore_store: DocStore) -> None:
    from datetime import timedelta

    store = docstore_store
    store.register("config", Config)
    store.register("chat", Message, mode="log")
    store.put("config", "old", {"value": 1}, idempotency_key="k-old")
    store.put("config", "new", {"value": 1}, idempotency_key="k-new")
    store.append("chat", "c", [{"text": "x"}], idempotency_key="k-chat")
    with store.pool.connection() as conn:
        conn.execute(
            f'UPDATE "{store.schema}".versions SET written_at = now() - '
            "interval '60 days' WHERE kind = '_idempotency' AND name <> 'k-new'"
        )
    # prune by age forgets the kind's keys written before the cutoff, and only those.
    assert store.prune_documents("config", older_than=timedelta(days=30)) == 0
    assert count_rows(store, "versions", "_idempotency") == 2
    assert store.put("config", "old", {"value": 2}, idempotency_key="k-old").version == 2
    with pytest.raises(IdempotencyKeyReused):
        store.put("config", "new", {"value": 2}, idempotency_key="k-new")
    with pytest.raises(IdempotencyKeyReused):
        store.append("chat", "c", [{"text": "other"}], idempotency_key="k-chat")


def test_a_lost_reply_to_a_transactions_commit_is_outcome_unknown(
    lossy: tuple[LossyProxy, DocStore, DocStore],
) -> None:
    proxy, store, direct = lossy
    with pytest.raises(OutcomeUnknown, match="unknown"), store.transaction():
        store.put("config", "t", {"value": 1})
        proxy.drop_replies(1, writes_only=False)  # the next statement is the COMMIT
    assert proxy.dropped == 1
    assert direct.get("config", "t").version == 1  # it did commit
    # A statement failing inside a block is known to be rolled back with the block.
    proxy.drop_replies(1)
    with pytest.raises(DatabaseUnavailable) as err, store.transaction():
        store.put("config", "u", {"value": 1})
    assert not isinstance(err.value, OutcomeUnknown)
    assert count_rows(direct, "documents", "config", "u") == 0


@pytest.mark.parametrize("write", ["put", "append", "delete"])
def test_a_retry_queued_behind_its_own_first_attempt_returns_it_not_a_conflict(
    docstore_store: DocStore, docstore_dsn: str, write: str
) -> None:
    """The first attempt is still running (the client gave up on it) when the retry
    looks its key up; both then wait on one row lock, and the first commits."""
    import threading
    import time

    import psycopg

    store = docstore_store
    store.register("config", Config)
    store.register("chat", Message, mode="log")
    if write == "append":
        kind, name = "chat", "c"
        store.append(kind, name, [{"text": "one"}])
        call: Callable[[], Any] = lambda: store.append(  # noqa: E731
            kind, name, [{"text": "two"}], expected_version=1, idempotency_key="q"
        )
    else:
        kind, name = "config", "a"
        store.put(kind, name, {"value": 1})
        call = (
            (lambda: store.put(kind, name, {"value": 2}, expected_version=1, idempotency_key="q"))
            if write == "put"
            else (lambda: store.delete(kind, name, expected_version=1, idempotency_key="q"))
        )
    results: list[Any] = []

    def attempt() -> None:
        try:
            results.append(call())
        except Exception as exc:
            results.append(exc)

    def waiters(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
            "USING (pid) WHERE NOT l.granted AND a.query LIKE %s",
            ("%documents%",),
        ).fetchone()
        assert row is not None
        return int(row[0])

    holder = psycopg.connect(docstore_dsn)
    holder.execute(
        f'SELECT 1 FROM "{store.schema}".documents WHERE kind = %s AND name = %s FOR UPDATE', (kind, name)
    )
    threads = [threading.Thread(target=attempt) for _ in range(2)]
    try:
        with psycopg.connect(docstore_dsn, autocommit=True) as watch:
            for expected_waiters, thread in enumerate(threads, 1):
                thread.start()
                deadline = time.monotonic() + 20
                while waiters(watch) < expected_waiters:
                    assert time.monotonic() < deadline, "the attempts never queued"
                    time.sleep(0.02)
    finally:
        holder.rollback()
        holder.close()
        for thread in threads:
            thread.join(30)
    assert not [r for r in results if isinstance(r, Exception)], results
    first, second = results
    assert (first.version if write == "put" else first) == (second.version if write == "put" else second) == 2
    assert count_rows(store, "versions", kind, name) == 2


def test_purge_forgets_the_keys_of_the_documents_it_removes(docstore_store: DocStore) -> None:
    """Issue 24, break 4: a keyed write after a purge must store (not answer "written" for
    a document that is gone), and a reused key must never show a purged name."""
    store = docstore_store
    store.register("config", Config)
    store.register("chat", Message, mode="log")
    store.put("config", "secret-name", {"value": 1}, idempotency_key="k-put")
    store.put("config", "secret-name", {"value": 2}, idempotency_key="k-put-2")
    store.append("chat", "secret-chat", [{"text": "x"}], idempotency_key="k-append")
    store.put("config", "kept", {"value": 1}, idempotency_key="k-kept")
    assert store.purge("config", "secret-name") == ["secret-name"]
    assert store.purge("chat", ["secret-chat"]) == ["secret-chat"]
    with store.pool.connection() as conn:
        left = conn.execute(
            f'SELECT name, data::text FROM "{store.schema}".versions WHERE kind = %s', ["_idempotency"]
        ).fetchall()
    assert [name for name, _ in left] == ["k-kept"] and "secret" not in left[0][1]
    # The same keyed write again writes, as a first write.
    again = store.put("config", "secret-name", {"value": 1}, idempotency_key="k-put")
    assert (again.version, again.changed) == (1, True)
    assert store.get("config", "secret-name").data == Config(value=1)
    assert store.append("chat", "secret-chat", [{"text": "x"}], idempotency_key="k-append") == 1
    assert store.read("chat", "secret-chat") == [Message(text="x")]
    # Another caller reusing a purged document's key is no IdempotencyKeyReused naming it.
    assert store.put("config", "other", {"value": 5}, idempotency_key="k-put-2").version == 1
    # The keys of documents left alone are kept.
    with pytest.raises(IdempotencyKeyReused):
        store.put("config", "kept", {"value": 2}, idempotency_key="k-kept")


def test_purge_and_prune_find_keys_through_an_index_not_a_scan(docstore_store: DocStore) -> None:
    """Issue 24, suspicion: keys are found by their document's kind and name (purge) and
    by kind and age (prune(older_than=)), JSON fields of the key rows. Each statement
    must match an index of schema.sql, not scan every version of every kind. (At 200,000
    keys beside 200,000 versions the scan took 55 ms per purge and 44 ms per prune
    batch, the indexes 0.1 ms and 2.4 ms; here 4,000 keys of 20 kinds, rolled back.)"""
    from docstore import _sql as q

    store = docstore_store
    sql = store._core.sql
    statements = {
        "versions_key_document_idx": (q.PURGE_DOCUMENTS, {"kind": "k3", "names": ["doc-3", "doc-9"]}),
        "versions_key_age_idx": (q.PRUNE_KEYS, {"kind": "k3", "cutoff": "2000-01-01", "batch": 500}),
    }
    with store.pool.connection() as conn, conn.transaction():
        conn.execute(
            sql(
                "INSERT INTO {s}.versions (kind, name, version, op, data, written_at) "
                "SELECT '_idempotency', 'key-' || g, 1, 'put', jsonb_build_object("
                "'kind', 'k' || mod(g, 20), 'name', 'doc-' || (g / 20), 'version', 1), "
                "now() - g * interval '1 hour' FROM generate_series(1, 4000) g"
            )
        )
        conn.execute(sql("ANALYZE {s}.versions"))
        conn.execute("SET LOCAL enable_seqscan = off")  # a scan shows only if no index fits
        for index, (template, params) in statements.items():
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql(template), params).fetchall())
            keys = [line for line in plan.splitlines() if "_idempotency" in line or index in line]
            assert any(index in line for line in keys), plan
            assert not any("Seq Scan" in line for line in keys), plan
