"""Read replicas, against a real streaming replica (tests/servers.py: ReplicaPair).

One primary and one hot standby serve the whole module. Replay on the standby is paused
(``pg_wal_replay_pause()``) where a test needs it to lag, which makes "the replica has not
seen this write yet" certain rather than a race.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from proxy import LossyProxy
from psycopg.conninfo import make_conninfo
from servers import PgBouncer, ReplicaPair, ThrowawayServer, free_port

from docstore import (
    AsyncDocStore,
    DatabaseUnavailable,
    DocStore,
    DocumentNotFound,
    LimitExceeded,
    OutcomeUnknown,
    Registry,
    VersionConflict,
    _replica,
)
from docstore.agents import StorageManager
from docstore.agents._settings import settings_from_env

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.S | re.M)


def kinds() -> Registry:
    registry = Registry()
    registry.register("cfg", dict)
    registry.register("chat", dict, mode="log")
    return registry


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicaPair]:
    with ReplicaPair() as servers:
        yield servers


def _replica_dsn(pair: ReplicaPair) -> str:
    assert pair.replica is not None
    return pair.replica.dsn


def _on_replica(pair: ReplicaPair, query: str) -> Any:
    with psycopg.connect(_replica_dsn(pair), autocommit=True) as conn:
        row = conn.execute(query).fetchone()
        return None if row is None else row[0]


def _caught_up(pair: ReplicaPair) -> None:
    """Wait until the replica has replayed everything the primary has written."""
    assert pair.replica is not None
    _replays_all(pair, pair.replica)


def _replays_all(pair: ReplicaPair, standby: ThrowawayServer) -> None:
    """Resume replay on ``standby`` and wait until it has everything the primary wrote."""

    def ask(query: str) -> Any:
        with psycopg.connect(standby.dsn, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
            return None if row is None else row[0]

    ask("SELECT pg_wal_replay_resume()")
    with psycopg.connect(pair.primary.dsn, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replayed = ask("SELECT pg_last_wal_replay_lsn()::text")
        if _replica.lsn_int(replayed) >= _replica.lsn_int(target):
            return
        time.sleep(0.02)
    raise AssertionError(f"the standby on port {standby.port} did not catch up within 30 s")


def _pause(pair: ReplicaPair) -> None:
    _on_replica(pair, "SELECT pg_wal_replay_pause()")
    deadline = time.monotonic() + 10
    while _on_replica(pair, "SELECT pg_get_wal_replay_pause_state()") != "paused":
        assert time.monotonic() < deadline, "replay did not pause"
        time.sleep(0.01)


def _fall_behind(pair: ReplicaPair, schema: str, value: dict[str, Any]) -> None:
    """Pause the replica once it has everything, then have another writer put ``value``
    as cfg "a" on the primary: the replica keeps the version before."""
    _caught_up(pair)
    _pause(pair)
    with DocStore.connect(pair.primary.dsn, schema=schema, kinds=kinds(), max_size=1) as other:
        other.put("cfg", "a", value)


def _routed(pair: ReplicaPair, schema: str, **options: Any) -> DocStore:
    """A store on the primary whose reads go to the replica."""
    return DocStore.connect(
        pair.primary.dsn, read_dsn=_replica_dsn(pair), schema=schema, kinds=kinds(), **options
    )


@pytest.fixture
def schema(pair: ReplicaPair) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    _caught_up(pair)  # never leave replay paused for the next test


def test_a_store_with_read_dsn_reads_from_the_replica(pair: ReplicaPair, schema: str) -> None:
    with _routed(pair, schema, max_size=2) as store:
        store.init_schema()
        store.put("cfg", "a", {"v": 1})
        assert store.read_pool is not None
        with store.read_pool.connection() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        # Another writer moves the document on: the primary has v2, the paused replica v1.
        _fall_behind(pair, schema, {"v": 2})
        assert store.get("cfg", "a").data == {"v": 1}
        assert [d.data for d in store.list("cfg")] == [{"v": 1}]
        assert "reads=" in repr(store) and str(pair.replica.port) in repr(store)  # type: ignore[union-attr]


def test_a_store_reads_its_own_writes_while_the_replica_lags(pair: ReplicaPair, schema: str) -> None:
    with _routed(pair, schema, max_size=2) as store:
        store.init_schema()
        _caught_up(pair)
        _pause(pair)
        store.put("cfg", "a", {"v": 1})
        store.append("chat", "s1", [{"n": 1}, {"n": 2}])
        # The replica has neither write; the store still sees both (read on the primary).
        assert _on_replica(pair, f'SELECT count(*) FROM "{schema}".versions') == 0
        assert store.get("cfg", "a").data == {"v": 1}
        assert store.read("chat", "s1", last=50) == [{"n": 1}, {"n": 2}]
        # A store without writes of its own reads the replica's snapshot.
        with _routed(pair, schema, max_size=1) as reader:
            assert reader.list("cfg") == []
        # Once the replica has replayed the writes, reads go back to it.
        _fall_behind(pair, schema, {"v": 2})
        assert store.get("cfg", "a").data == {"v": 1}


def test_after_a_version_conflict_reads_see_the_write_that_won(pair: ReplicaPair, schema: str) -> None:
    """Read, then write with expected_version: when another writer got in between, the
    retry's read must see that writer's version, not the lagging replica's."""
    with DocStore.connect(
        pair.primary.dsn, read_dsn=_replica_dsn(pair), schema=schema, kinds=kinds(), max_size=2
    ) as store:
        store.init_schema()
        store.put("cfg", "a", {"v": 1})
        _fall_behind(pair, schema, {"v": 2})
        seen = store.get("cfg", "a")
        assert (seen.version, seen.data) == (1, {"v": 1})  # the replica's snapshot
        with pytest.raises(VersionConflict):
            store.put("cfg", "a", {"v": 3}, expected_version=seen.version)
        again = store.get("cfg", "a")
        assert (again.version, again.data) == (2, {"v": 2})
        assert store.put("cfg", "a", {"v": 3}, expected_version=again.version).version == 3


def test_the_change_feeds_cursor_comes_from_the_primary(pair: ReplicaPair, schema: str) -> None:
    with (
        DocStore.connect(
            pair.primary.dsn, read_dsn=_replica_dsn(pair), schema=schema, kinds=kinds(), max_size=2
        ) as store,
        DocStore.connect(pair.primary.dsn, schema=schema, kinds=kinds(), max_size=1) as other,
    ):
        store.init_schema()
        _caught_up(pair)
        _pause(pair)
        for i in range(5):
            other.put("cfg", f"c{i}", {"v": i})  # the paused replica has none of these
        assert store.change_cursor() == other.change_cursor()


def test_writes_inside_a_transaction_are_read_back_after_it(pair: ReplicaPair, schema: str) -> None:
    with _routed(pair, schema, max_size=2) as store:
        store.init_schema()
        _caught_up(pair)
        _pause(pair)
        with store.transaction():
            store.put("cfg", "a", {"v": 1})
            assert store.get("cfg", "a").data == {"v": 1}  # the transaction's own connection
        assert store.get("cfg", "a").data == {"v": 1}


def test_the_async_store_routes_reads_alike(pair: ReplicaPair, schema: str) -> None:
    async def scenario() -> None:
        store = await AsyncDocStore.connect(
            pair.primary.dsn, read_dsn=_replica_dsn(pair), schema=schema, kinds=kinds(), max_size=2
        )
        try:
            await store.init_schema()
            await store.put("cfg", "a", {"v": 1})
            assert (await store.get("cfg", "a")).data == {"v": 1}  # own write, lag or not
            await asyncio.to_thread(_caught_up, pair)
            await asyncio.to_thread(_pause, pair)
            other = await AsyncDocStore.connect(pair.primary.dsn, schema=schema, kinds=kinds(), max_size=1)
            await other.put("cfg", "a", {"v": 2})
            await other.close()
            assert (await store.get("cfg", "a")).data == {"v": 1}  # the replica's snapshot
            await store.put("cfg", "a", {"v": 3})
            assert (await store.get("cfg", "a")).data == {"v": 3}  # own write, on the primary
            async with store.transaction():
                await store.put("cfg", "b", {"v": 1})
            assert [d.name for d in await store.list("cfg")] == ["a", "b"]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_reads_fall_back_to_the_primary_when_the_replica_is_down(
    pair: ReplicaPair, schema: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_replica, "RETRY_AFTER", 0.3)
    assert pair.replica is not None
    with _routed(pair, schema, max_size=2, timeout=2) as store:
        store.init_schema()
        store.put("cfg", "a", {"v": 1})
        _caught_up(pair)
        caplog.set_level(logging.WARNING, logger="docstore.replica")
        pair.replica.stop("immediate")
        try:
            for _ in range(5):
                assert store.get("cfg", "a").data == {"v": 1}
            time.sleep(0.4)  # past the retry time: the replica is tried again, still down
            assert store.get("cfg", "a").data == {"v": 1}
            down = [r for r in caplog.records if "unavailable" in r.getMessage()]
            assert len(down) == 1, [r.getMessage() for r in caplog.records]
            assert "reading from the primary" in down[0].getMessage()
        finally:
            pair.replica.start()
        time.sleep(0.4)
        _fall_behind(pair, schema, {"v": 2})
        assert store.get("cfg", "a").data == {"v": 1}  # back on the (paused) replica
        back = [r for r in caplog.records if "reads go to it" in r.getMessage()]
        assert len(back) == 1


def test_a_store_opens_when_its_replica_is_down(
    pair: ReplicaPair, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = f"host=127.0.0.1 port={free_port()} user=postgres dbname=postgres password=s3cret"
    with DocStore.connect(
        pair.primary.dsn, read_dsn=dead, schema=schema, kinds=kinds(), max_size=1, timeout=2
    ) as store:
        store.init_schema()
        store.put("cfg", "a", {"v": 1})
        for _ in range(3):
            assert store.get("cfg", "a").data == {"v": 1}
        assert "s3cret" not in repr(store)
    assert [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert not [r for r in caplog.records if "s3cret" in r.getMessage()]


def test_the_read_url_setting_is_read_and_never_shown() -> None:
    settings = settings_from_env(
        {
            "AURITE_ENABLE_DB": "1",
            "AURITE_DB_URL": "postgresql://u:pw1@db1/app",
            "AURITE_DB_READ_URL": "postgresql://u:pw2@db2/app",
        }
    )
    assert settings is not None
    assert settings.read_dsn == "postgresql://u:pw2@db2/app"
    assert "pw2" not in repr(settings) and "read_dsn=<hidden>" in repr(settings)
    plain = settings_from_env({"AURITE_ENABLE_DB": "1", "AURITE_DB_URL": "postgresql://db1/a"})
    assert plain is not None and plain.read_dsn is None


def test_storage_manager_reads_from_aurite_db_read_url(pair: ReplicaPair, schema: str) -> None:
    environ = {
        "AURITE_ENABLE_DB": "1",
        "AURITE_DB_URL": pair.primary.dsn,
        "AURITE_DB_READ_URL": _replica_dsn(pair),
        "AURITE_DB_SCHEMA": schema,
    }
    manager = StorageManager.from_env(environ=environ, max_size=2)
    assert manager is not None
    with manager:
        manager.init_db()
        manager.store.register("cfg", dict)
        assert manager.store.read_pool is not None
        with manager.store.read_pool.connection() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        manager.store.put("cfg", "a", {"v": 1})
        _fall_behind(pair, schema, {"v": 2})
        assert manager.store.get("cfg", "a").data == {"v": 1}


def test_the_scaling_pages_examples_run_on_a_fresh_and_on_a_used_database(
    pair: ReplicaPair, tmp_path: Path
) -> None:
    """docs/scaling.md's ```python blocks, against this module's primary, its replica and
    a PgBouncer in transaction mode in front of the primary: once on a database without
    docstore's schemas, then again on the same, used database."""
    blocks = [m.group(1) for m in FENCE.finditer((ROOT / "docs" / "scaling.md").read_text(encoding="utf-8"))]
    assert len(blocks) >= 3
    with psycopg.connect(pair.primary.dsn, autocommit=True) as conn:
        for schema in ("docstore", "history"):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    with PgBouncer(pair.primary.port) as bouncer:
        env = {
            "DOCSTORE_URL": pair.primary.dsn,
            "DOCSTORE_READ_URL": _replica_dsn(pair),
            "DOCSTORE_POOLER_URL": bouncer.dsn("postgres"),
            "PATH": "/usr/bin:/bin",
        }
        for round_ in ("fresh", "used"):
            for n, code in enumerate(blocks):
                script = tmp_path / f"example_{round_}_{n}.py"
                script.write_text(code, encoding="utf-8")
                done = subprocess.run(
                    [sys.executable, str(script)],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    cwd=tmp_path,
                    env=env,
                )
                assert done.returncode == 0, f"block {n} ({round_}): {done.stderr}"
    _caught_up(pair)


def test_routing_state_after_an_unknown_write_position() -> None:
    """A write whose WAL position could not be asked for sends reads to the primary until
    a primary connection has told its position; LSN order is numeric, not textual."""
    routing = _replica.ReadRouting("", "replica", 1.0)
    assert routing.usable() and routing.caught_up("r1:5432")
    routing.wrote("0/9FFFFFF", routing.writing())
    assert not routing.caught_up("r1:5432")
    assert not routing.replayed("r1:5432", "0/9000000")
    assert routing.replayed("r1:5432", "0/10000000")  # 0x10000000 > 0x9FFFFFF, though "1" < "9"
    assert not routing.caught_up("r2:5432")  # another standby has said nothing yet
    since = routing.writing()
    routing.wrote_unknown()
    routing.wrote("0/10000000", since)  # asked for before the unknown write: no proof
    assert not routing.usable()
    routing.wrote("0/10000001", routing.writing())
    assert routing.usable() and not routing.caught_up("r1:5432")


def test_after_an_unknown_outcome_reads_tell_what_the_primary_holds(pair: ReplicaPair, schema: str) -> None:
    """The error says to re-read before writing again: that read must not come from a
    replica that has not replayed the write (it did commit)."""
    with (
        LossyProxy(pair.primary.port) as proxy,
        DocStore.connect(
            proxy.dsn("postgres"),
            read_dsn=_replica_dsn(pair),
            schema=schema,
            kinds=kinds(),
            max_size=2,
            prepare_threshold=None,
        ) as store,
    ):
        store.init_schema()
        _caught_up(pair)
        _pause(pair)
        proxy.drop_replies(1)
        with pytest.raises(OutcomeUnknown):
            store.put("cfg", "x", {"v": 1})
        assert store.get("cfg", "x").data == {"v": 1}  # from the primary: it committed
        # Once a primary connection has said how far its WAL reached, the replica serves
        # again as soon as it has replayed that far.
        _caught_up(pair)
        _pause(pair)
        with DocStore.connect(pair.primary.dsn, schema=schema, kinds=kinds(), max_size=1) as other:
            other.put("cfg", "x", {"v": 2})
        assert store.get("cfg", "x").data == {"v": 1}


def test_a_conflict_inside_a_transaction_leaves_reads_on_the_primary_until_they_see_it(
    pair: ReplicaPair, schema: str
) -> None:
    with DocStore.connect(
        pair.primary.dsn, read_dsn=_replica_dsn(pair), schema=schema, kinds=kinds(), max_size=2
    ) as store:
        store.init_schema()
        store.put("cfg", "a", {"v": 1})
        _fall_behind(pair, schema, {"v": 2})
        seen = []
        for _ in range(3):  # a read-then-CAS loop, each try in a transaction
            doc = store.get("cfg", "a")
            seen.append(doc.version)
            try:
                with store.transaction():
                    store.put("cfg", "a", {"v": doc.data["v"] + 10}, expected_version=doc.version)
                break
            except VersionConflict:
                continue
        assert seen == [1, 2] and store.get("cfg", "a").data == {"v": 12}


def test_watch_configs_with_read_dsn_misses_nothing_while_the_replica_lags(
    pair: ReplicaPair, schema: str
) -> None:
    """The watch takes its cursor on the primary: its load and its per-change reads must
    not come from a replica that has not replayed what lies before that cursor."""
    with StorageManager(DocStore.connect(pair.primary.dsn, schema=schema, max_size=1)) as editor:
        editor.init_db()
        _caught_up(pair)
        _pause(pair)
        editor.sync_llm_config({"name": "before", "provider": "anthropic", "model": "m1"})
        with StorageManager(
            DocStore.connect(pair.primary.dsn, read_dsn=_replica_dsn(pair), schema=schema, max_size=2)
        ) as host:
            host.watch_configs(poll_interval=0.1)
            assert host.get_config("llm", "before").model == "m1"
            editor.sync_llm_config({"name": "before", "provider": "anthropic", "model": "m2"})
            editor.sync_llm_config({"name": "new", "provider": "anthropic", "model": "m3"})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if host.get_config("llm", "new").model == "m3":
                        break
                except DocumentNotFound:
                    pass  # not arrived yet
                time.sleep(0.02)
            assert host.get_config("llm", "new").model == "m3"
            assert host.get_config("llm", "before").model == "m2"


def test_a_read_over_a_limit_on_the_replica_is_reported_and_leaves_reads_on_the_replica(
    pair: ReplicaPair, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A statement over a PostgreSQL limit (class 54) is the statement's fault: the replica
    # is not down, and running the read again on the primary is no answer.
    tight = make_conninfo(_replica_dsn(pair), options="-c max_stack_depth=100")
    with DocStore.connect(
        pair.primary.dsn, read_dsn=tight, schema=schema, kinds=kinds(), max_size=1
    ) as store:
        store.init_schema()
        store.put("cfg", "a", {"value": 1})
        _fall_behind(pair, schema, {"value": 2})
        caplog.set_level(logging.WARNING, logger="docstore.replica")
        deep = "@ == 1"
        for _ in range(2000):
            deep = f"!({deep})"
        with pytest.raises(LimitExceeded, match="over a limit of PostgreSQL") as raised:
            store.count("cfg", where={"$jsonpath_exists": f"$.value ? ({deep})"})
        assert not isinstance(raised.value, DatabaseUnavailable)
        assert not [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert store.get("cfg", "a").data == {"value": 1}  # still read from the paused replica


def test_a_multi_host_read_dsn_asks_the_standby_that_answers_how_far_it_has_replayed(
    pair: ReplicaPair, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24, break 2: the read pool moves from a caught-up standby to a lagging one
    (the first host stops). The position the first one reported must not vouch for the
    second: the store's own write is read from the primary until the second has it."""
    monkeypatch.setattr(_replica, "RETRY_AFTER", 0.1)
    assert pair.replica is not None
    first = pair.standby()
    try:
        hosts = f"host=127.0.0.1,127.0.0.1 port={first.port},{pair.replica.port}"
        with DocStore.connect(
            pair.primary.dsn,
            read_dsn=f"{hosts} user=postgres dbname=postgres connect_timeout=2",
            schema=schema,
            kinds=kinds(),
            max_size=1,
            timeout=2,
        ) as store:
            assert store.read_pool is not None
            store.init_schema()
            store.put("cfg", "a", {"v": 1})
            _caught_up(pair)
            _pause(pair)  # the second standby keeps v1
            store.put("cfg", "a", {"v": 2})
            _replays_all(pair, first)
            assert store.get("cfg", "a").data == {"v": 2}
            with store.read_pool.connection() as conn:
                assert conn.info.port == first.port  # that read ran on the first standby
            first.stop("immediate")
            seen = set()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                seen.add(store.get("cfg", "a").data["v"])
                time.sleep(0.02)
            assert seen == {2}
            with store.read_pool.connection() as conn:
                assert conn.info.port == pair.replica.port  # the pool did move
    finally:
        first.close()


def test_a_standby_that_has_not_replayed_the_schema_yet_sends_the_read_to_the_primary(
    pair: ReplicaPair, schema: str
) -> None:
    """Issue 24, break 2: a store that wrote nothing has no position to wait for, and its
    standby may lack the schema: the read runs on the primary, not SchemaMissing."""
    _caught_up(pair)
    _pause(pair)
    with DocStore.connect(pair.primary.dsn, schema=schema, kinds=kinds(), max_size=1) as writer:
        writer.init_schema()
        writer.put("cfg", "a", {"v": 1})
    with _routed(pair, schema, max_size=1) as reader:
        assert reader.get("cfg", "a").data == {"v": 1}
        assert [d.name for d in reader.list("cfg")] == ["a"]


def test_another_threads_earlier_write_position_does_not_end_an_unknown_outcome(
    pair: ReplicaPair, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24, suspicion: thread B asks the primary for its WAL position, then thread A's
    write commits and its reply is lost (OutcomeUnknown). B's position, recorded after A's
    failure, predates A's commit: it must not send reads back to a replica that has
    replayed up to B's position only."""
    with (
        LossyProxy(pair.primary.port) as proxy,
        DocStore.connect(
            proxy.dsn("postgres"),
            read_dsn=_replica_dsn(pair),
            schema=schema,
            kinds=kinds(),
            max_size=2,
            prepare_threshold=None,
        ) as store,
    ):
        store.init_schema()
        routing = store._reads
        assert routing is not None
        asked, failed = threading.Event(), threading.Event()
        record = routing.wrote

        def held_back(*args: Any) -> None:
            if threading.current_thread() is writer:
                asked.set()
                failed.wait(10)
            record(*args)

        monkeypatch.setattr(routing, "wrote", held_back)
        writer = threading.Thread(target=store.put, args=("cfg", "b", {"v": 1}))
        writer.start()
        assert asked.wait(10)  # B has its position, not yet recorded
        _caught_up(pair)  # the replica has B's write and everything before A's
        _pause(pair)
        proxy.drop_replies(1)
        with pytest.raises(OutcomeUnknown):
            store.put("cfg", "x", {"v": 1})  # committed; the reply was lost
        failed.set()
        writer.join(10)
        assert store.get("cfg", "x").data == {"v": 1}  # from the primary: it committed
