"""The change feed: every committed write is delivered once, in (xid, seq) order, across
lost connections, consumer restarts and writers committing out of their start order."""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import psycopg
import pytest
from other_database import transaction_in_another_database
from psycopg_pool import ConnectionPool

from docstore import (
    AsyncDocStore,
    Change,
    ChangesPruned,
    CursorAheadOfServer,
    DatabaseUnavailable,
    DocStore,
    DocStoreError,
    InvalidCursor,
)
from docstore._feed import parse_cursor

START = "0.0"  # a cursor before every change: a fresh schema's whole feed


@pytest.fixture
def feed_store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    store = docstore_factory()
    store.register("cfg", dict)
    store.register("conv", dict, mode="log")
    store.register("stop", dict)
    return store


def _count(store: DocStore) -> int:
    with store.pool.connection() as conn:
        ((n,),) = conn.execute(f'SELECT count(*) FROM "{store.schema}".changes').fetchall()
    return int(n)


def _listener_pids(store: DocStore) -> list[int]:
    """Backends that last ran this schema's feed page (the listening connections)."""
    with store.pool.connection() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND query LIKE %s AND query LIKE %s",
            ("%->> 'pruned_through'%", f'%"{store.schema}".changes%'),
        ).fetchall()
    return [r[0] for r in rows]


def _wait_listening(store: DocStore, timeout: float = 10, exclude: frozenset[int] = frozenset()) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in _listener_pids(store) if p not in exclude]
        if pids:
            return pids[0]
        time.sleep(0.02)
    raise AssertionError("the feed never started listening")


class Consumer:
    """A feed read on a thread until it sees a put of kind ``stop``."""

    def __init__(self, store: DocStore, after: str | None = None, **options: Any) -> None:
        self.got: list[Change] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(store, after, options), daemon=True)
        self._thread.start()

    def _run(self, store: DocStore, after: str | None, options: dict[str, Any]) -> None:
        try:
            for change in store.changes(after=after, **options):
                if change.kind == "stop":
                    return
                self.got.append(change)
        except BaseException as exc:
            self.error = exc

    def stop(self, store: DocStore, timeout: float = 30) -> list[Change]:
        store.put("stop", f"s{time.monotonic_ns()}", {})
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the feed did not deliver the stop change"
        if self.error is not None:
            raise self.error
        return self.got


def _keys(changes: list[Change]) -> list[tuple[str, str, int, str]]:
    return [(c.kind, c.name, c.version, c.op) for c in changes]


def _assert_once_each_in_version_order(changes: list[Change]) -> None:
    """Each change once; per document, versions increase, and start again after a prune
    (the document was removed for good: one written later under its name is new)."""
    cursors = [c.cursor for c in changes]
    assert len(set(cursors)) == len(cursors), "a change was delivered twice"
    last: dict[tuple[str, str], int] = {}
    for c in changes:
        key = (c.kind, c.name)
        if c.op in ("purge", "prune"):
            assert c.version >= last.get(key, 0), f"{c} removed an older version than delivered"
            last.pop(key, None)
            continue
        assert c.version > last.get(key, 0), f"{c} arrived after a later version"
        last[key] = c.version


def test_every_write_is_one_change_with_the_version_after_it(feed_store: DocStore) -> None:
    s = feed_store
    s.put("cfg", "a", {"x": 1})
    s.put("cfg", "a", {"x": 1})  # unchanged: writes nothing, so no change
    s.put("cfg", "a", {"x": 2})
    s.revert("cfg", "a", 1)
    s.delete("cfg", "a")
    s.append("conv", "c", [{"n": i} for i in range(50)])
    s.rewrite("conv", "c", [{"n": 0}])
    s.clear("conv", "c")
    s.append("conv", "c", [], meta_update={"topic": "x"})
    s.delete("conv", "c")
    s.put_many("cfg", {"b": {}, "d": {}})
    s.prune_documents("cfg", keep_last=1)  # b and d written together: one of them goes
    changes = list(islice(s.changes(after=START), _count(s)))
    assert _keys(changes)[:11] == [
        ("cfg", "a", 1, "put"),
        ("cfg", "a", 2, "put"),
        ("cfg", "a", 3, "revert"),
        ("cfg", "a", 4, "delete"),
        ("conv", "c", 50, "append"),
        ("conv", "c", 51, "rewrite"),
        ("conv", "c", 51, "clear"),
        ("conv", "c", 51, "append"),
        ("conv", "c", 51, "delete"),
        ("cfg", "b", 1, "put"),
        ("cfg", "d", 1, "put"),
    ]
    # prune keeps the newest cfg (b and d share a write time: b by name) and removes the
    # deleted a (at its tombstone's version) and d.
    assert sorted(_keys(changes)[11:]) == [("cfg", "a", 4, "prune"), ("cfg", "d", 1, "prune")]
    assert len(changes) == 13
    assert changes[-1].written_at >= changes[0].written_at


def test_an_import_is_one_change_per_document(
    feed_store: DocStore, docstore_factory: Callable[..., DocStore]
) -> None:
    feed_store.put("cfg", "a", {"x": 1})
    feed_store.append("conv", "c", [{"n": 1}, {"n": 2}])
    target = docstore_factory()
    target.register("cfg", dict)
    docs, _versions = target.import_lines(feed_store.export())
    changes = list(islice(target.changes(after=START), _count(target)))
    assert docs == 2 and sorted(_keys(changes)) == [("cfg", "a", 1, "import"), ("conv", "c", 2, "import")]


def test_a_feed_started_now_delivers_only_what_commits_after_it(feed_store: DocStore) -> None:
    feed_store.put("cfg", "before", {})
    consumer = Consumer(feed_store, poll_interval=0.5)
    _wait_listening(feed_store)
    feed_store.put("cfg", "after", {})
    assert _keys(consumer.stop(feed_store)) == [("cfg", "after", 1, "put")]


def test_writes_in_one_transaction_are_one_change_each_in_order_and_a_rollback_none(
    feed_store: DocStore,
) -> None:
    s = feed_store
    with s.transaction():
        s.put("cfg", "t1", {})
        s.append("conv", "t2", [{"n": 1}, {"n": 2}])
        s.put("cfg", "t1", {"v": 2})
    with pytest.raises(RuntimeError), s.transaction():
        s.put("cfg", "rolled_back", {})
        raise RuntimeError("abandon")
    with s.transaction():
        s.put("cfg", "kept", {})
        with pytest.raises(RuntimeError), s.transaction():  # a savepoint, rolled back
            s.put("cfg", "in_savepoint", {})
            raise RuntimeError("abandon the savepoint")
    changes = list(islice(s.changes(after=START), _count(s)))
    assert _keys(changes) == [
        ("cfg", "t1", 1, "put"),
        ("conv", "t2", 2, "append"),
        ("cfg", "t1", 2, "put"),
        ("cfg", "kept", 1, "put"),
    ]
    # Rolled-back rows are invisible to the count above too: nothing waits behind them.
    assert _count(s) == 4


class OpenWriter:
    """A transaction in a thread of its own that has put ``name`` (so it holds an xid)
    and stays open until :meth:`commit`."""

    def __init__(self, store: DocStore, name: str) -> None:
        self._inside, self._release = threading.Event(), threading.Event()

        def write() -> None:
            with store.transaction():
                store.put("cfg", name, {})
                self._inside.set()
                assert self._release.wait(30)

        self._thread = threading.Thread(target=write)
        self._thread.start()
        assert self._inside.wait(30)

    def commit(self) -> None:
        self._release.set()
        self._thread.join(30)


def test_a_transaction_that_started_first_and_commits_last_is_not_skipped(feed_store: DocStore) -> None:
    """The hard case for a cursor: T1 takes its position, T2 commits, a consumer reads and
    keeps its cursor, then T1 commits. Resuming from that cursor must still deliver T1."""
    s = feed_store
    t1 = OpenWriter(s, "first_started")
    s.put("cfg", "first_committed", {})
    # What a consumer can read now, and its last cursor: T1's change is not committed,
    # and T2's waits behind it, so the reader must not move past T1's position.
    seen: list[Change] = []
    collector = threading.Thread(target=lambda: seen.extend(islice(s.changes(after=START), 2)), daemon=True)
    collector.start()
    collector.join(1.0)
    early = list(seen)
    t1.commit()
    cursor = early[-1].cursor if early else START
    rest = list(islice(s.changes(after=cursor), 2 - len(early)))
    names = [c.name for c in early + rest]
    assert sorted(names) == ["first_committed", "first_started"] and len(names) == 2
    collector.join(10)
    assert [c.name for c in seen] == ["first_started", "first_committed"]


def test_change_cursor_leaves_out_exactly_what_had_committed_even_behind_a_running_writer(
    feed_store: DocStore,
) -> None:
    """T1 takes an xid and stays open; T2 (a later xid) commits; the cursor is taken; T1
    commits. From that cursor the feed delivers T1 and what comes after, never T2, and a
    consumer resuming from T1's change's cursor does not get T2 either."""
    s = feed_store
    t1 = OpenWriter(s, "open_across_the_cursor")
    s.put("cfg", "committed_before_the_cursor", {})
    cursor = s.change_cursor()
    t1.commit()
    s.put("cfg", "after_the_cursor", {})
    first, second = islice(s.changes(after=cursor), 2)
    assert [first.name, second.name] == ["open_across_the_cursor", "after_the_cursor"]
    resumed = next(iter(s.changes(after=first.cursor)))
    assert resumed.name == "after_the_cursor"
    with pytest.raises(ValueError, match="not a change feed cursor"):
        next(iter(s.changes(after="1.0@not-a-snapshot")))


def test_many_writers_committing_out_of_order_a_lost_connection_and_a_restart_miss_nothing(
    feed_store: DocStore,
) -> None:
    s = feed_store
    consumer = Consumer(s, after=START, poll_interval=0.5)
    _wait_listening(s)
    written: list[tuple[str, str, int, str]] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        rng = random.Random(w)
        for i in range(40):
            name = f"w{w}-{i % 5}"
            with s.transaction():
                doc = s.put("cfg", name, {"i": i})
                # Hold the transaction a while: later-started writers commit first.
                time.sleep(rng.random() * 0.01)
            with lock:
                written.append(("cfg", name, doc.version, "put"))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    killed = 0
    while any(t.is_alive() for t in threads):
        time.sleep(0.15)
        pids = _listener_pids(s)
        if pids and killed < 3:
            with s.pool.connection() as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
            killed += 1
    for t in threads:
        t.join()
    assert killed >= 1
    first = consumer.stop(s)
    _assert_once_each_in_version_order(first)
    assert sorted(_keys(first)) == sorted(written)

    # A restart from a cursor in the middle: the rest, exactly.
    half = len(first) // 2
    s.put("cfg", "late", {})
    rest = list(islice(s.changes(after=first[half].cursor, kinds=["cfg"]), len(first) - half))
    assert rest[:-1] == first[half + 1 :] and rest[-1].name == "late"


def test_kinds_filters_the_feed(feed_store: DocStore) -> None:
    feed_store.put("cfg", "a", {})
    feed_store.append("conv", "c", [{}])
    feed_store.put("cfg", "b", {})
    assert [c.name for c in islice(feed_store.changes(["cfg"], after=START), 2)] == ["a", "b"]
    with pytest.raises(ValueError, match="not a change feed cursor"):
        next(feed_store.changes(after="yesterday"))


def test_breaking_out_of_the_loop_returns_the_connection_not_listening(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    base = docstore_factory()
    with DocStore.connect(docstore_dsn, schema=base.schema, min_size=1, max_size=1) as s:
        s.register("cfg", dict)
        s.put("cfg", "a", {})
        s.put("cfg", "b", {})
        for _change in s.changes(after=START):
            assert s.pool.get_stats()["pool_available"] == 0  # the feed holds the only one
            break
        assert s.pool.get_stats()["pool_available"] == 1
        with s.pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM pg_listening_channels()").fetchone() == (0,)
        assert s.get("cfg", "a").version == 1  # and the store works on with it


def test_a_feed_with_a_listen_dsn_leaves_the_pool_alone(feed_store: DocStore, docstore_dsn: str) -> None:
    before = feed_store.pool.get_stats()["pool_available"]
    consumer = Consumer(feed_store, listen_dsn=docstore_dsn, poll_interval=0.5)
    _wait_listening(feed_store)
    assert feed_store.pool.get_stats()["pool_available"] == before
    feed_store.put("cfg", "a", {})
    assert _keys(consumer.stop(feed_store)) == [("cfg", "a", 1, "put")]


def test_a_cursor_older_than_prune_changes_kept_raises_instead_of_skipping(feed_store: DocStore) -> None:
    s = feed_store
    s.put("cfg", "old", {})
    first = next(s.changes(after=START))
    s.put("cfg", "older_still_pruned", {})
    with s.pool.connection() as conn:
        conn.execute(f"UPDATE \"{s.schema}\".changes SET written_at = now() - interval '2 days'")
    s.put("cfg", "new", {})
    # Only changes below every running transaction are final; one left open elsewhere on
    # this server (another test's) defers the prune, so run it until it is through.
    pruned, deadline = 0, time.monotonic() + 30
    while pruned < 2 and time.monotonic() < deadline:
        pruned += s.prune_changes(older_than=timedelta(days=1), batch_size=1)
        time.sleep(0.05)
    assert pruned == 2
    with pytest.raises(ChangesPruned, match="fell behind retention") as caught:
        next(s.changes(after=first.cursor))
    assert caught.value.cursor == first.cursor
    with pytest.raises(ChangesPruned):
        next(s.changes(after=START))
    # From the horizon on nothing is missing: the feed goes on.
    assert [c.name for c in islice(s.changes(after=caught.value.horizon), 1)] == ["new"]


def test_a_feed_gives_up_with_its_cursor_when_the_database_stays_gone(feed_store: DocStore) -> None:
    feed = feed_store.changes(listen_dsn="postgresql://nobody:s3cret@127.0.0.1:1/none", after=START)
    with pytest.raises(DatabaseUnavailable, match="lost its connection 4 times") as caught:
        next(feed)
    assert "s3cret" not in str(caught.value) and "after='0.0'" in str(caught.value)


async def test_the_async_feed_delivers_in_order_and_breaking_out_returns_the_connection(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    base = docstore_factory()
    base.register("cfg", dict)
    store = await AsyncDocStore.connect(docstore_dsn, schema=base.schema, min_size=1, max_size=1)
    try:
        store.register("cfg", dict)
        got: list[Change] = []

        async def consume() -> None:
            # changes() is an async generator typed as an AsyncIterator, which hides its
            # aclose() from mypy (a follow-up for docstore/aio.py).
            async with aclosing(store.changes(poll_interval=0.5)) as feed:  # type: ignore[type-var]
                async for change in feed:
                    got.append(change)
                    if len(got) == 3:
                        break

        task = asyncio.create_task(consume())
        await asyncio.to_thread(_wait_listening, base)
        for name in ("a", "b", "c"):
            await asyncio.to_thread(base.put, "cfg", name, {})
        await asyncio.wait_for(task, 30)
        assert [c.name for c in got] == ["a", "b", "c"]
        assert store.pool.get_stats()["pool_available"] == 1
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM pg_listening_channels()")
            assert await cur.fetchone() == (0,)
    finally:
        await store.close()


def test_delivery_follows_commit_within_a_poll_interval_not_after_it(feed_store: DocStore) -> None:
    """LISTEN wakes the feed: with a 30 s poll interval, a change still arrives at once."""
    out: queue.Queue[Change] = queue.Queue()

    def first() -> None:
        for change in islice(feed_store.changes(poll_interval=30), 1):
            out.put(change)

    threading.Thread(target=first, daemon=True).start()
    _wait_listening(feed_store)
    feed_store.put("cfg", "now", {})
    assert out.get(timeout=10).name == "now"


def test_terminating_the_listener_while_idle_reconnects_and_catches_up(feed_store: DocStore) -> None:
    consumer = Consumer(feed_store, poll_interval=0.5)
    pid = _wait_listening(feed_store)
    with psycopg.connect(str(feed_store.pool.conninfo), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        feed_store.put("cfg", "while_reconnecting", {})
    assert _keys(consumer.stop(feed_store)) == [("cfg", "while_reconnecting", 1, "put")]


def _follow(store: DocStore, **options: Any) -> queue.Queue[Change]:
    """The first change of a feed on a thread (on a connection of its own), in a queue."""
    out: queue.Queue[Change] = queue.Queue()
    before = frozenset(_listener_pids(store))

    def run() -> None:
        for change in islice(store.changes(**options), 1):
            out.put(change)

    threading.Thread(target=run, daemon=True).start()
    _wait_listening(store, exclude=before)
    return out


def test_a_kind_that_does_not_notify_is_delivered_at_the_next_poll_and_notify_is_per_kind(
    feed_store: DocStore, docstore_dsn: str
) -> None:
    """Log kinds do not NOTIFY by default (it would serialise concurrent appends' commits):
    the feed finds their changes when it polls. A kind registered with notify=True wakes
    it at once, whatever the poll interval."""
    polled = _follow(feed_store, kinds=["conv"], poll_interval=0.3, listen_dsn=docstore_dsn)
    feed_store.append("conv", "c", [{"n": 1}])
    assert polled.get(timeout=10).op == "append"

    feed_store.register("loud", dict, mode="log", notify=True)
    woken = _follow(feed_store, kinds=["loud"], poll_interval=60, listen_dsn=docstore_dsn)
    started = time.monotonic()
    feed_store.append("loud", "c", [{"n": 1}])
    assert woken.get(timeout=30).kind == "loud" and time.monotonic() - started < 30
    assert not feed_store.kinds.get("conv").notify and feed_store.kinds.get("cfg").notify


async def test_the_async_feed_reconnects_after_its_backend_is_killed_and_misses_nothing(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    base = docstore_factory()
    base.register("cfg", dict)
    store = await AsyncDocStore.connect(docstore_dsn, schema=base.schema, max_size=2)
    try:
        store.register("cfg", dict)
        cursor = await store.change_cursor()
        got: list[Change] = []

        async def consume() -> None:
            # changes() is an async generator typed as an AsyncIterator, which hides its
            # aclose() from mypy (a follow-up for docstore/aio.py).
            async with aclosing(store.changes(after=cursor, poll_interval=0.5)) as feed:  # type: ignore[type-var]
                async for change in feed:
                    got.append(change)
                    if len(got) == 6:
                        break

        task = asyncio.create_task(consume())
        for round_ in range(3):
            pid = await asyncio.to_thread(_wait_listening, base)
            await asyncio.to_thread(base.put, "cfg", f"before-kill-{round_}", {})
            with psycopg.connect(docstore_dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await asyncio.to_thread(base.put, "cfg", f"after-kill-{round_}", {})
            # The next round waits for a listener on a fresh backend.
            deadline = time.monotonic() + 10
            while pid in await asyncio.to_thread(_listener_pids, base) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await asyncio.wait_for(task, 30)
        assert [c.name for c in got] == [f"{w}-kill-{r}" for r in range(3) for w in ("before", "after")]
        _assert_once_each_in_version_order(got)
    finally:
        await store.close()


def test_a_purge_is_a_purge_change_of_each_document_it_removed(feed_store: DocStore) -> None:
    s = feed_store
    s.put("cfg", "a", {"x": 1})
    s.append("conv", "c", [{"n": 1}, {"n": 2}])
    s.put("cfg", "b", {})
    s.delete("cfg", "b")
    before = _count(s)
    assert s.purge("cfg", ["a", "b", "missing"]) == ["a"]
    assert s.purge("conv", "c") == ["c"]
    changes = list(islice(s.changes(after=START), _count(s)))[before:]
    # The deleted b goes too (at its tombstone's version); a missing name is no change.
    assert sorted(_keys(changes)) == [
        ("cfg", "a", 1, "purge"),
        ("cfg", "b", 2, "purge"),
        ("conv", "c", 2, "purge"),
    ]


def _wait_for_lock(store: DocStore, text: str, timeout: float = 10) -> None:
    """Until a statement of this schema holding ``text`` waits for a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE %s AND query LIKE %s",
                (f"%{text}%", f'%"{store.schema}".%'),
            ).fetchone()
        if row is not None and row[0]:
            return
        time.sleep(0.01)
    raise AssertionError(f"no statement with {text!r} waited for a lock")


def test_two_overlapping_prune_changes_never_move_the_horizon_back(feed_store: DocStore) -> None:
    """Two hosts run the same retention. B deletes c1..c3 in a transaction; A starts while B
    is open (an older snapshot: c1..c3 still there) with a batch of 2, waits for B's rows,
    and commits last, having gone only to c2. The horizon stays at c3: a consumer resuming
    from c1 or c2 is told it fell behind, instead of getting c4 after a silent gap."""
    s = feed_store
    for name in ("c1", "c2", "c3"):
        s.put("cfg", name, {})
    c1, c2, c3 = islice(s.changes(after=START), 3)
    everything = datetime.now(UTC) + timedelta(hours=1)  # every change is older than that
    ran: list[int] = []
    with s.transaction():
        # A transaction left open elsewhere on this server defers it: run it until through.
        pruned, deadline = 0, time.monotonic() + 30
        while pruned < 3 and time.monotonic() < deadline:
            pruned += s.prune_changes(older_than=everything)
        assert pruned == 3
        # A thread runs in a context of its own: outside this transaction, on a connection of its own.
        a = threading.Thread(target=lambda: ran.append(s.prune_changes(older_than=everything, batch_size=2)))
        a.start()
        _wait_for_lock(s, "WITH bound AS")
    a.join(30)
    assert ran == [0]  # B had deleted its rows
    s.put("cfg", "c4", {})
    for behind in (c1, c2):
        with pytest.raises(ChangesPruned) as caught:
            next(s.changes(after=behind.cursor))
        assert caught.value.horizon == c3.cursor
    assert [c.name for c in islice(s.changes(after=c3.cursor), 1)] == ["c4"]


def test_a_feed_on_a_pool_without_autocommit_gives_its_connection_back_as_it_found_it(
    feed_store: DocStore, docstore_dsn: str
) -> None:
    """The feed needs autocommit to LISTEN and read (a transaction would hold its snapshot
    open); a pool whose connections are not in autocommit gets them back as they were."""
    with ConnectionPool(docstore_dsn, min_size=1, max_size=1) as pool:
        with pool.connection() as conn:
            assert not conn.autocommit  # psycopg's default
        s = DocStore(pool, schema=feed_store.schema, kinds=feed_store.kinds)
        s.put("cfg", "a", {})
        for _change in s.changes(after=START):
            break
        with pool.connection() as conn:
            assert not conn.autocommit
            assert conn.execute("SELECT count(*) FROM pg_listening_channels()").fetchone() == (0,)
        assert s.get("cfg", "a").version == 1


MALFORMED: list[object] = [
    "",
    "1",
    "1.",
    ".1",
    "1..0",
    "1.2.3",
    "-1.0",
    "+1.0",
    " 1.0",
    "1.0 ",
    "\u00b2.0",  # superscript two: a digit to str.isdigit(), not to int()
    "1.\u0663",  # Arabic-Indic three
    "\uff11.0",  # fullwidth one
    "9223372036854775808.0",  # one past the largest
    "1.9223372036854775808",
    "99999999999999999999999.0",
    "1" * 5000 + ".0",
    "1.0@",
    "1.0@1:5",
    "1.0@1:5:3:4",
    "1.0@a:5:",
    "1.0@5:3:",  # xmin past xmax
    "1.0@0:5:",  # transaction id 0
    "1.0@4294967296:4294967300:",  # 0 in the low 32 bits: not a transaction id
    "1.0@1:5:7",  # running past xmax
    "1.0@3:5:1",  # running below xmin
    "1.0@1:5:3,2",  # out of order
    "1.0@1:5:3,3",
    "1.0@1:5:,3",
    "1.0@1:5:3,",
    "1.0@1:9223372036854775808:",
    7,
    b"1.0",
]


def test_every_malformed_cursor_is_refused_as_an_invalid_cursor_naming_it(feed_store: DocStore) -> None:
    for cursor in MALFORMED:
        with pytest.raises(InvalidCursor) as caught:
            next(feed_store.changes(after=cursor))  # type: ignore[arg-type]
        error = caught.value
        assert isinstance(error, DocStoreError) and isinstance(error, ValueError)
        assert not isinstance(error, CursorAheadOfServer)
        assert error.cursor == cursor and str(error).startswith("not a change feed cursor: ")
        assert (repr(cursor)[:40] if isinstance(cursor, str) else repr(cursor)) in str(error)
        assert len(str(error)) < 400
    # What the parser accepts, the server reads as it is: none of its errors leaks, no
    # number is capped. Random cursors over the characters a cursor holds.
    rng = random.Random(24)
    taken = []
    for _ in range(3000):
        snapshot = ":".join(
            "".join(rng.choice("0123456789,") for _ in range(rng.randint(0, 3))) for _ in range(3)
        )
        cursor = f"{rng.randint(0, 10 ** rng.randint(0, 20))}.{rng.randint(0, 9)}@{snapshot}"
        try:
            taken.append(parse_cursor(cursor))
        except InvalidCursor:
            continue
    assert len(taken) > 50
    with feed_store.pool.connection() as conn:
        rows = conn.execute(
            "SELECT x::xid8::text, s::pg_snapshot::text FROM unnest(%s::text[], %s::text[]) AS t(x, s)",
            ([str(xid) for (xid, _seq), _ in taken], [snap for _, snap in taken]),
        ).fetchall()

    def normal(snapshot: str | None) -> str:
        xmin, xmax, running = str(snapshot).split(":")
        return f"{int(xmin)}:{int(xmax)}:" + ",".join(str(int(x)) for x in running.split(",") if x)

    assert [(int(x), snap) for x, snap in rows] == [(xid, normal(snap)) for (xid, _seq), snap in taken]


@pytest.mark.slow
def test_a_transaction_open_in_another_database_makes_no_new_feed_fall_behind(
    feed_store: DocStore, docstore_dsn: str
) -> None:
    """Snapshots are cluster-wide: a transaction holding an id in another database holds
    back every snapshot's xmin. prune_changes rightly passes it (it cannot write here); a
    feed starting now (after=None, change_cursor()) must start past it too, not behind
    the horizon prune_changes recorded."""
    s = feed_store
    s.put("cfg", "before", {})
    with transaction_in_another_database(docstore_dsn) as other:
        s.put("cfg", "while_open", {})
        with s.pool.connection() as conn:
            conn.execute(f"UPDATE \"{s.schema}\".changes SET written_at = now() - interval '2 days'")
        pruned, deadline = 0, time.monotonic() + 30
        while pruned < 2 and time.monotonic() < deadline:
            pruned += s.prune_changes(older_than=timedelta(days=1))
            time.sleep(0.02)
        assert pruned == 2
        with s.pool.connection() as conn:
            row = conn.execute(
                f"SELECT data ->> 'pruned_through' FROM \"{s.schema}\".documents WHERE kind = '_docstore' "
                "AND name = 'changes'"
            ).fetchone()
        assert row is not None and int(row[0].split(".")[0]) > other  # pruned past it
        assert list(s.changes(stop=lambda: True)) == []  # after=None: nothing yet, no error
        cursor = s.change_cursor()
        s.put("cfg", "after", {})
        assert [c.name for c in islice(s.changes(after=cursor), 1)] == ["after"]


def test_a_cursor_ahead_of_every_transaction_of_the_server_is_refused(feed_store: DocStore) -> None:
    """A consumer's saved cursor after the store moved (export | import) to a cluster whose
    transaction ids are lower: resuming from it would deliver nothing until this server's
    ids passed it. It is refused, naming the cursor and what to do."""
    s = feed_store
    s.put("cfg", "a", {})
    here = s.change_cursor()
    xmax = int(here.split("@")[1].split(":")[1])
    far = xmax + 1_000_000
    for cursor in (f"{far}.7", f"{far}.0@{far}:{far}:", f"{xmax}.0@{xmax}:{far}:{far - 1}"):
        with pytest.raises(CursorAheadOfServer) as caught:
            list(s.changes(after=cursor, stop=lambda: True))  # accepted, it would wait for ever
        error = caught.value
        assert isinstance(error, InvalidCursor) and error.cursor == cursor
        assert repr(cursor) in str(error) and "ahead of this server" in str(error)
        assert "another cluster" in str(error) and "change_cursor()" in str(error)
    # The server's own cursors, at its xmax, are not ahead.
    s.put("cfg", "b", {})
    assert [c.name for c in islice(s.changes(after=here), 1)] == ["b"]
    assert list(s.changes(after=f"{xmax}.0", kinds=["nothing"], stop=lambda: True)) == []


def test_across_a_purge_or_a_prune_a_document_of_the_same_name_starts_again_at_version_1(
    feed_store: DocStore,
) -> None:
    """The feed's order per document: versions increase until a purge or prune change;
    the document is then gone for good, and the next write of its name is a new document
    whose versions start again at 1."""
    s = feed_store
    s.put("cfg", "a", {"x": 1})
    s.put("cfg", "a", {"x": 2})
    s.purge("cfg", "a")
    s.put("cfg", "a", {"x": 3})
    s.delete("cfg", "a")
    assert s.prune_documents("cfg", keep_last=0) == 1
    s.put("cfg", "a", {"x": 4})
    changes = list(islice(s.changes(after=START), _count(s)))
    assert _keys(changes) == [
        ("cfg", "a", 1, "put"),
        ("cfg", "a", 2, "put"),
        ("cfg", "a", 2, "purge"),
        ("cfg", "a", 1, "put"),
        ("cfg", "a", 2, "delete"),
        ("cfg", "a", 2, "prune"),
        ("cfg", "a", 1, "put"),
    ]
    _assert_once_each_in_version_order(changes)
