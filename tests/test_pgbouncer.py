"""The public API through a real PgBouncer (tests/servers.py: PgBouncer), in transaction
mode as agent fleets run it, and in session mode.

PgBouncer forwards to the machine's server (as a client only). Its pools are kept smaller
than the stores' pools, so concurrent calls really share server connections: in
transaction mode a client's consecutive transactions land on whichever server connection
is free. Debian's PgBouncer here is 1.18, which predates protocol-level prepared
statements (1.21), so stores connect with ``prepare_threshold=None`` in transaction mode.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel
from servers import PgBouncer

from docstore import (
    AsyncDocStore,
    DatabaseUnavailable,
    DocStore,
    DocumentNotFound,
    Registry,
    VersionConflict,
)
from docstore.agents import StorageManager

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers


class Agent(BaseModel):
    name: str
    model: str = "claude"


class AgentV2(BaseModel):
    name: str
    model: str = "claude"
    temperature: float = 0.5


def kinds() -> Registry:
    registry = Registry()
    registry.register("agent", Agent)
    registry.register("chat", dict, mode="log")
    return registry


def _dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    with PgBouncer(5432, pool_mode="transaction", pool_size=3) as pgb:
        yield pgb


@pytest.fixture(scope="module")
def session_bouncer() -> Iterator[PgBouncer]:
    with PgBouncer(5432, pool_mode="session", pool_size=3) as pgb:
        yield pgb


@pytest.fixture
def schema(docstore_pool: Any) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with docstore_pool.connection() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _pools(pgb: PgBouncer, dbname: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pgb.dsn("pgbouncer"), autocommit=True, prepare_threshold=None) as conn:
        cur = conn.execute("SHOW POOLS")
        cols = [c.name for c in cur.description or []]
        return [tuple(row) for row in cur.fetchall() if row[cols.index("database")] == dbname]


def _pool_mode(pgb: PgBouncer, dbname: str) -> str:
    with psycopg.connect(pgb.dsn("pgbouncer"), autocommit=True, prepare_threshold=None) as conn:
        cur = conn.execute("SHOW POOLS")
        cols = [c.name for c in cur.description or []]
        modes = {
            row[cols.index("pool_mode")] for row in cur.fetchall() if row[cols.index("database")] == dbname
        }
    assert len(modes) == 1, modes
    return str(modes.pop())


def exercise(store: DocStore) -> None:
    """Every public call of DocStore, each checked by what it returns."""
    assert store.init_schema() >= 1
    assert store.put("agent", "a", {"name": "a"}).version == 1
    assert store.put("agent", "a", {"name": "a", "model": "gpt"}, expected_version=1).version == 2
    with pytest.raises(VersionConflict):
        store.put("agent", "a", {"name": "a"}, expected_version=1)
    assert store.get("agent", "a").data.model == "gpt"
    assert store.get("agent", "a", version=1).data.model == "claude"
    assert set(store.get_many("agent", ["a", "zz"])) == {"a"}
    assert [d.version for d in store.versions("agent", "a")] == [1, 2]
    assert store.revert("agent", "a", 1).data.model == "claude"
    docs = store.put_many("agent", {f"b{i}": {"name": f"b{i}"} for i in range(30)})
    assert len(docs) == 30
    assert [d.name for d in store.list("agent", where={"model": "claude"}, limit=3)] == ["a", "b0", "b1"]
    assert len(list(store.iter("agent", batch_size=7))) == 31
    assert store.delete("agent", "b0") == 2
    with pytest.raises(DocumentNotFound):
        store.get("agent", "b0")
    store.register("agent", AgentV2, schema_version=2, upgraders={1: lambda d: d})
    assert store.upgrade("agent", batch_size=10) == 30
    assert store.append("chat", "s1", [{"n": 1}, {"n": 2}]) == 2
    assert store.append("chat", "s1", [{"n": 3}], expected_version=2) == 3
    assert store.read("chat", "s1", last=2) == [{"n": 2}, {"n": 3}]
    assert store.read("chat", "s1", after=1).versions == [2, 3]
    assert store.rewrite("chat", "s1", [{"n": 9}]) == 4
    assert store.read("chat", "s1") == [{"n": 9}]
    assert store.clear("chat", "s1") == 4
    assert store.read("chat", "s1") == []
    with store.transaction():
        store.put("agent", "t1", {"name": "t1"})
        store.append("chat", "s2", [{"n": 1}])
    with pytest.raises(RuntimeError), store.transaction():
        store.put("agent", "t2", {"name": "t2"})
        raise RuntimeError("roll back")
    assert store.get_many("agent", ["t1", "t2"]).keys() == {"t1"}
    assert store.prune_versions("chat", keep_last=1) == 3
    lines = list(store.export(batch_size=5))
    assert sum('"t": "document"' in line for line in lines) == 34
    assert store.import_lines(lines) == (0, 0)  # all there already, identically
    assert store.prune_documents("chat", older_than=timedelta(0)) == 2


def test_the_whole_api_through_pgbouncer_in_transaction_mode(
    bouncer: PgBouncer, docstore_dsn: str, schema: str
) -> None:
    dbname = _dbname(docstore_dsn)
    with DocStore.connect(
        bouncer.dsn(dbname), schema=schema, kinds=kinds(), prepare_threshold=None, max_size=6
    ) as store:
        exercise(store)
        assert str(store.pool.conninfo).endswith(f"dbname={dbname}")
        assert f":{bouncer.port}/" in repr(store)
    assert _pool_mode(bouncer, dbname) == "transaction"


def test_concurrent_writers_share_few_server_connections(
    bouncer: PgBouncer, docstore_dsn: str, schema: str
) -> None:
    """8 threads on 8 client connections, 3 server connections: every write lands."""
    dbname = _dbname(docstore_dsn)
    with DocStore.connect(
        bouncer.dsn(dbname), schema=schema, kinds=kinds(), prepare_threshold=None, min_size=8, max_size=8
    ) as store:
        errors: list[BaseException] = []

        def init_and_write(worker: int) -> None:
            try:
                store.init_schema()  # the advisory lock is per transaction: fine here
                for i in range(40):
                    store.append("chat", f"w{worker}", [{"i": i}])
                    with store.transaction():
                        store.put("agent", f"w{worker}", {"name": f"{i}"})
                        store.append("chat", f"w{worker}-tx", [{"i": i}])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=init_and_write, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        for worker in range(8):
            assert [m["i"] for m in store.read("chat", f"w{worker}")] == list(range(40))
            assert len(store.read("chat", f"w{worker}-tx")) == 40
            assert store.get("agent", f"w{worker}").version == 40
        clients, servers = _counts(bouncer, dbname)
        assert clients >= 8 and servers <= 3, (clients, servers)
    (row,) = _pools(bouncer, dbname)
    assert row[-1] == "transaction"


def _counts(pgb: PgBouncer, dbname: str) -> tuple[int, int]:
    """Client and server connections PgBouncer holds for ``dbname``."""
    with psycopg.connect(pgb.dsn("pgbouncer"), autocommit=True, prepare_threshold=None) as conn:
        counts = []
        for what in ("CLIENTS", "SERVERS"):
            cur = conn.execute(f"SHOW {what}")
            cols = [c.name for c in cur.description or []]
            counts.append(sum(1 for row in cur.fetchall() if row[cols.index("database")] == dbname))
    return counts[0], counts[1]


def test_the_async_store_through_pgbouncer_in_transaction_mode(
    bouncer: PgBouncer, docstore_dsn: str, schema: str
) -> None:
    dbname = _dbname(docstore_dsn)

    async def scenario() -> None:
        store = await AsyncDocStore.connect(
            bouncer.dsn(dbname), schema=schema, kinds=kinds(), prepare_threshold=None, min_size=6, max_size=6
        )
        try:
            await asyncio.gather(*[store.init_schema() for _ in range(4)])

            async def worker(w: int) -> None:
                for i in range(20):
                    await store.append("chat", f"a{w}", [{"i": i}])
                    async with store.transaction():
                        await store.put("agent", f"a{w}", {"name": str(i)})
                        assert (await store.get("agent", f"a{w}")).data.name == str(i)

            await asyncio.gather(*[worker(w) for w in range(6)])
            for w in range(6):
                assert len(await store.read("chat", f"a{w}", last=50)) == 20
                assert (await store.get("agent", f"a{w}")).version == 20
            lines = [line async for line in store.export()]
            assert len(lines) == 6 * 2 + 6 * 20 + 6 * 20
        finally:
            await store.close()

    asyncio.run(scenario())


def test_storage_manager_through_pgbouncer(bouncer: PgBouncer, docstore_dsn: str, schema: str) -> None:
    environ = {
        "AURITE_ENABLE_DB": "1",
        "AURITE_DB_URL": bouncer.dsn(_dbname(docstore_dsn)),
        "AURITE_DB_SCHEMA": schema,
    }
    manager = StorageManager.from_env(environ=environ, prepare_threshold=None, max_size=4)
    assert manager is not None
    with manager:
        manager.init_db()
        manager.save_full_history("weather", "s1", [{"role": "user", "content": "hi"}])
        assert manager.load_history("weather", "s1") == [{"role": "user", "content": "hi"}]


def test_statement_timeout_through_pgbouncer_says_what_to_do(bouncer: PgBouncer, docstore_dsn: str) -> None:
    # PgBouncer refuses libpq's `options` startup parameter, which carries the timeout.
    with pytest.raises(DatabaseUnavailable, match="unsupported startup parameter") as caught:
        DocStore.connect(bouncer.dsn(_dbname(docstore_dsn)), statement_timeout=5, prepare_threshold=None)
    assert "ALTER ROLE" in str(caught.value)


def test_session_mode_keeps_prepared_statements(
    session_bouncer: PgBouncer, docstore_dsn: str, schema: str
) -> None:
    """In session mode a client keeps its server connection: the default
    prepare_threshold works, and so does everything else."""
    dbname = _dbname(docstore_dsn)
    with DocStore.connect(session_bouncer.dsn(dbname), schema=schema, kinds=kinds(), max_size=3) as store:
        exercise(store)
        with store.pool.connection() as conn:
            prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        assert prepared is not None and prepared[0] > 0
    assert _pool_mode(session_bouncer, dbname) == "session"
