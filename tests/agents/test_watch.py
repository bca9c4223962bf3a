"""watch_configs: two hosts on one store; one edits, the other's memory follows."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from itertools import islice

import agent_fixtures
import pytest
from other_database import transaction_in_another_database

from docstore import AsyncDocStore, Change, DocStore, DocumentNotFound
from docstore.agents import AsyncStorageManager, StorageManager
from docstore.agents._watch import ConfigWatch
from docstore.agents.configs import CONFIG_KINDS

db = agent_fixtures.db

FAST = {"name": "fast", "provider": "anthropic", "model": "claude-haiku"}


def _shows(watch: ConfigWatch, model: str | None, timeout: float = 10) -> bool:
    """Until the watch holds llm 'fast' with ``model`` (None: holds none), or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            held = watch.get("llm", "fast").model
        except DocumentNotFound:
            held = None
        if held == model:
            return True
        time.sleep(0.01)
    return False


def test_a_watching_host_sees_another_hosts_edits_and_reads_from_memory(
    db: DocStore, docstore_dsn: str
) -> None:
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    editor.sync_llm_config(FAST)
    with StorageManager.connect(docstore_dsn, schema=db.schema) as host:
        seen: list[Change] = []
        watch = host.watch_configs(poll_interval=0.5, on_change=seen.append)
        assert host.get_config("llm", "fast").model == "claude-haiku"  # loaded at start

        doc = editor.sync_llm_config({**FAST, "model": "claude-sonnet"})
        assert watch.wait_for("llm", "fast", doc.version, timeout=10)
        assert host.get_config("llm", "fast").model == "claude-sonnet"
        assert [(c.kind, c.name, c.op) for c in seen] == [("llm", "fast", "put")]

        # Served from memory: a thousand reads ask the pool for nothing.
        asked = host.store.pool.get_stats().get("requests_num", 0)
        for _ in range(1000):
            host.get_config("llm", "fast")
        assert host.store.pool.get_stats().get("requests_num", 0) == asked

        version = editor.store.delete("llm", "fast")
        assert watch.wait_for("llm", "fast", version, timeout=10)
        with pytest.raises(DocumentNotFound):
            host.get_config("llm", "fast")

        editor.sync_llm_config({**FAST, "name": "second"})
        assert watch.wait_for("llm", "second", 1, timeout=10)
        assert watch.running
    assert not watch.running  # the manager's close stopped it


def test_a_watch_that_fell_behind_retention_reloads_instead_of_serving_stale_configs(
    db: DocStore, docstore_dsn: str
) -> None:
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    release = threading.Event()

    def slow(change: Change) -> None:  # the host is busy while the store moves on
        assert release.wait(30)

    with StorageManager.connect(docstore_dsn, schema=db.schema) as host:
        watch = host.watch_configs(poll_interval=0.2, on_change=slow)
        editor.sync_llm_config(FAST)
        assert watch.wait_for("llm", "fast", 1, timeout=10)  # held; its on_change blocks
        other = editor.sync_llm_config({**FAST, "name": "other"})
        with db.pool.connection() as conn:
            conn.execute(f"UPDATE \"{db.schema}\".changes SET written_at = now() - interval '1 day'")
        pruned, deadline = 0, time.monotonic() + 30
        while pruned < 2 and time.monotonic() < deadline:
            pruned += db.prune_changes(older_than=timedelta(hours=1))
            time.sleep(0.05)
        assert pruned == 2  # including "other": the watch never read that change
        release.set()
        assert watch.wait_for("llm", "other", other.version, timeout=10)
        assert host.get_config("llm", "other").name == "other" and watch.running


async def test_an_async_host_watches_too(db: DocStore, docstore_dsn: str) -> None:
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    store = await AsyncDocStore.connect(docstore_dsn, schema=db.schema, max_size=2)
    host = AsyncStorageManager(store, owns_store=True)
    try:
        watch = await host.watch_configs(poll_interval=0.5)
        doc = await asyncio.to_thread(editor.sync_llm_config, FAST)
        assert await watch.wait_for("llm", "fast", doc.version, timeout=10)
        assert (await host.get_config("llm", "fast")).model == "claude-haiku"
    finally:
        await host.close()
    assert not watch.running
    assert store.pool.closed


async def test_the_async_watch_waits_on_the_loop_not_a_thread(db: DocStore, docstore_dsn: str) -> None:
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    store = await AsyncDocStore.connect(docstore_dsn, schema=db.schema, max_size=2)
    host = AsyncStorageManager(store, owns_store=True)
    try:
        watch = await host.watch_configs(poll_interval=0.5)
        threads = threading.active_count()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            for _ in range(5):
                await asyncio.sleep(0.02)
                ticks += 1

        # The loop runs on while it waits, and no thread is taken for the wait.
        missing, _ = await asyncio.gather(watch.wait_for("llm", "absent", 1, timeout=0.5), tick())
        assert missing is False and ticks == 5 and threading.active_count() == threads
        waiting = asyncio.create_task(watch.wait_for("llm", "fast", 1, timeout=10))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await asyncio.to_thread(editor.sync_llm_config, FAST)  # the edit wakes it
        assert await waiting is True
        assert await watch.wait_for("llm", "fast", 1, timeout=0) is True  # held already
    finally:
        await host.close()


def test_a_delete_delivered_again_after_a_load_does_not_remove_a_newer_document(db: DocStore) -> None:
    """The watch loads after taking its cursor, so it may see a change the load already
    holds: versions only go forward, deletes included."""
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    editor.sync_llm_config(FAST)
    cursor = db.change_cursor()
    gone = db.delete("llm", "fast")
    again = editor.sync_llm_config(FAST)  # written anew: version gone + 1
    watch = ConfigWatch(db)
    watch.cursor = cursor
    watch.load({"llm": db.list("llm")})
    delete, put = islice(db.changes(["llm"], after=cursor), 2)
    assert (delete.op, delete.version, put.version) == ("delete", gone, again.version)
    watch.apply(delete, None)  # older than what the load holds: ignored
    assert watch.get("llm", "fast").model == "claude-haiku"
    watch.apply(put, db.get("llm", "fast"))
    assert watch.versions[("llm", "fast")] == again.version


@pytest.mark.slow
def test_a_transaction_open_in_another_database_does_not_make_the_watch_reload(
    db: DocStore, docstore_dsn: str
) -> None:
    """Snapshots are cluster-wide: while another database holds a transaction open,
    prune_changes passes it, and the watch's new cursor must not fall behind that (it
    reloaded every config in a loop, 844 times in 2 s)."""
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    with transaction_in_another_database(docstore_dsn):
        editor.sync_llm_config(FAST)
        with db.pool.connection() as conn:
            conn.execute(f"UPDATE \"{db.schema}\".changes SET written_at = now() - interval '1 day'")
        pruned, deadline = 0, time.monotonic() + 30
        while pruned < 1 and time.monotonic() < deadline:
            pruned += db.prune_changes(older_than=timedelta(hours=1))
            time.sleep(0.02)
        assert pruned == 1
        with StorageManager.connect(docstore_dsn, schema=db.schema) as host:
            watch = host.watch_configs(poll_interval=0.2)
            time.sleep(0.2)  # the feed has its connection
            asked = host.store.pool.get_stats().get("requests_num", 0)
            time.sleep(0.5)  # a reload asks the pool for a connection: none in 2.5 poll intervals
            assert host.store.pool.get_stats().get("requests_num", 0) == asked
            doc = editor.sync_llm_config({**FAST, "model": "claude-sonnet"})
            assert watch.wait_for("llm", "fast", doc.version, timeout=10)
            assert host.get_config("llm", "fast").model == "claude-sonnet" and watch.running


def test_a_watch_whose_feed_cannot_start_reloads_once_a_poll_interval_not_in_a_loop(
    db: DocStore, docstore_dsn: str
) -> None:
    """A store whose tables were copied from a cluster further on (pg_dump into a younger
    one) records a prune horizon this server has not reached: every new feed is refused.
    The watch keeps serving what it loaded, reloading at most once a poll interval."""
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    editor.sync_llm_config(FAST)
    with db.pool.connection() as conn:
        conn.execute(
            f'INSERT INTO "{db.schema}".documents (kind, name, mode, version, data) '
            "VALUES ('_docstore', 'changes', 's', 1, jsonb_build_object('pruned_through', "
            "(pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000)::text || '.0'))"
        )
    with StorageManager.connect(docstore_dsn, schema=db.schema) as host:
        watch = host.watch_configs(poll_interval=0.2)
        asked = host.store.pool.get_stats().get("requests_num", 0)
        time.sleep(0.6)
        reloads = (host.store.pool.get_stats().get("requests_num", 0) - asked) / (len(CONFIG_KINDS) + 2)
        assert reloads <= 5, f"{reloads:.0f} reloads in 0.6 s"
        assert host.get_config("llm", "fast").model == "claude-haiku" and watch.running


def test_a_config_purged_or_pruned_then_written_again_is_shown_at_its_new_version_1(
    db: DocStore, docstore_dsn: str
) -> None:
    """A purge or a prune removes a document for good; written again, it starts at version
    1, below the version the watch held: the watch holds the new one."""
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    with StorageManager.connect(docstore_dsn, schema=db.schema) as host:
        watch = host.watch_configs(poll_interval=0.5)
        editor.sync_llm_config(FAST)
        doc = editor.sync_llm_config({**FAST, "model": "claude-sonnet"})
        assert doc.version == 2 and _shows(watch, "claude-sonnet")

        assert db.purge("llm", "fast") == ["fast"]
        assert editor.sync_llm_config({**FAST, "model": "purged-and-back"}).version == 1
        assert _shows(watch, "purged-and-back")
        assert watch.versions[("llm", "fast")] == 1

        editor.sync_llm_config({**FAST, "model": "v2-again"})
        assert db.delete("llm", "fast") == 3
        assert db.prune_documents("llm", keep_last=0) == 1
        assert _shows(watch, None)
        assert editor.sync_llm_config({**FAST, "model": "pruned-and-back"}).version == 1
        assert _shows(watch, "pruned-and-back")

        # The feed's order is that of transaction ids: a transaction that took its id
        # before a purge committed, and wrote the name after it, comes first, and the
        # prune after it. The watch reads the document at the prune, and holds it.
        inside, go = threading.Event(), threading.Event()
        cursor = db.change_cursor()

        def early_writer() -> None:
            with editor.store.transaction():
                editor.sync_llm_config({**FAST, "name": "first"})  # takes its id
                inside.set()
                assert go.wait(10)
                assert editor.sync_llm_config({**FAST, "model": "early-writer"}).version == 1

        thread = threading.Thread(target=early_writer)
        thread.start()
        assert inside.wait(10)
        assert db.purge("llm", "fast") == ["fast"]
        go.set()
        thread.join(10)
        first, fast, prune = islice(db.changes(["llm"], after=cursor), 3)
        assert [(c.name, c.op) for c in (first, fast, prune)] == [
            ("first", "put"),
            ("fast", "put"),
            ("fast", "purge"),
        ]
        assert _shows(watch, "early-writer") and watch.running


def test_a_config_purged_while_the_watch_fell_behind_and_written_again_after_its_reload_is_shown(
    db: DocStore, docstore_dsn: str
) -> None:
    """The purge's change is pruned before the watch reads it: the watch reloads, holding no
    "fast" any more, and must not keep the old version against the one written next."""
    editor = StorageManager(DocStore(db.pool, schema=db.schema))
    editor.sync_llm_config(FAST)
    editor.sync_llm_config({**FAST, "model": "claude-sonnet"})  # version 2
    release = threading.Event()

    def slow(change: Change) -> None:  # the host is busy while the store moves on
        assert release.wait(30)

    with StorageManager.connect(docstore_dsn, schema=db.schema) as host:
        watch = host.watch_configs(poll_interval=0.2, on_change=slow)
        editor.sync_llm_config({**FAST, "name": "other"})
        assert watch.wait_for("llm", "other", 1, timeout=10)  # held; its on_change blocks
        db.purge("llm", "fast")
        with db.pool.connection() as conn:
            conn.execute(f"UPDATE \"{db.schema}\".changes SET written_at = now() - interval '1 day'")
        pruned, deadline = 0, time.monotonic() + 30
        while pruned < 4 and time.monotonic() < deadline:
            pruned += db.prune_changes(older_than=timedelta(hours=1))
            time.sleep(0.02)
        assert pruned == 4  # up to the purge, which the watch never read
        release.set()
        assert _shows(watch, None)  # reloaded
        assert editor.sync_llm_config({**FAST, "model": "back"}).version == 1
        assert _shows(watch, "back") and watch.running
