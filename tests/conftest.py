"""Fixtures of docstore's own suite, on top of the docstore.testing plugin.

The tests of a module ``tests/X_async.py`` are written once, async, against an
``AsyncDocStore`` (``astore``, ``adocstore_factory``, ``acount_rows`` ...); .ci/async_to_sync.py
generates their sync twin ``tests/X.py`` against a ``DocStore`` (``store``, ``docstore_factory``,
``count_rows`` ...), so both shells run every test and mypy checks every call. Such a
module defines its own ``astore`` fixture (its twin's is ``store``); what it checks once,
not per shell, is in the hand-written ``tests/X_once.py``.
"""

from __future__ import annotations

import asyncio
import gc
import io
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from docstore import AsyncDocStore, DocStore, Registry
from docstore.cli import main
from docstore.testing import SchemaPool

PARTITIONS = 4  # the same code paths as 16, at a quarter of the DDL


@pytest.fixture(autouse=True, scope="module")
def _leaks_fail_their_module() -> Iterator[None]:
    """Collect garbage once a module's tests and fixtures are done. An object left to the
    collector (a connection, a subprocess's pipe, an event loop) warns from its __del__;
    pytest turns that into an error of the test whose teardown is running. Without this,
    a leak in a reference cycle fails whichever later test the collector happens to run
    in, or, on an xdist worker, nothing at all: a worker's warnings at exit are lost."""
    yield
    gc.collect()


@pytest.fixture(autouse=True, scope="session")
def _leaks_of_session_fixtures_fail_the_last_test() -> Iterator[None]:
    """The same for the session's fixtures, torn down after every module's."""
    yield
    gc.collect()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("checker", "the model-based fault checker (tests/test_checker.py)")
    group.addoption(
        "--soak",
        type=float,
        default=None,
        metavar="SECONDS",
        help="run the checker's soak: new seeds of every scenario for SECONDS (else $DOCSTORE_SOAK)",
    )
    group.addoption(
        "--checker-seed",
        type=int,
        default=None,
        metavar="N",
        help="run seed N of each checker scenario (add -k primary or -k cluster), as a failure prints",
    )


@pytest.fixture(scope="session")
def sync_driven_loop(
    docstore_dsn: str,
) -> Iterator[tuple[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]]]:
    """An event loop the sync tests drive through the agents' adapter
    (AsyncManagerAsSync), with one async pool on it for the session: a pool per test would
    open (and probe) new connections for every test."""
    loop = asyncio.new_event_loop()
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        docstore_dsn,
        min_size=1,
        max_size=8,
        open=False,
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True},
        name="docstore-adapter-tests",
    )
    loop.run_until_complete(pool.open(wait=True))
    try:
        yield loop, pool
    finally:
        loop.run_until_complete(pool.close())
        loop.close()


Factory = Callable[..., DocStore]
AsyncFactory = Callable[..., Awaitable[AsyncDocStore]]


@pytest.fixture(scope="session")
async def adocstore_pool(docstore_dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """One async pool for the session, as docstore_pool is for the sync stores: a store per
    test on a pool of its own would open (and probe) new connections for every test."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        docstore_dsn,
        min_size=1,
        max_size=16,
        open=False,
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True},
        name="docstore-async-tests",
    )
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def adocstore_factory(
    adocstore_pool: AsyncConnectionPool[Any], docstore_kinds: Registry, docstore_schemas: SchemaPool
) -> AsyncIterator[AsyncFactory]:
    """``await make(partitions=None) -> AsyncDocStore`` on an empty, initialised schema, as
    docstore_factory makes a DocStore: from the session's kept schemas, emptied after the test."""
    taken: list[str] = []

    async def make(*, partitions: int | None = None) -> AsyncDocStore:
        taken.append(docstore_schemas.take(partitions))
        return AsyncDocStore(adocstore_pool, schema=taken[-1], kinds=docstore_kinds.copy())

    yield make
    for schema in taken:
        docstore_schemas.give_back(schema)


# The layout is a matter of SQL, which both shells share, so the async shell runs on the
# plain layout only. A module runs its tests on both layouts with a ``store`` fixture
# returning ``store_both_layouts`` (``astore`` returning ``astore_both_layouts``).
@pytest.fixture(params=["plain", "partitioned"])
def store_both_layouts(request: pytest.FixtureRequest, docstore_factory: Factory) -> DocStore:
    """A fresh DocStore, once on a plain and once on a hash-partitioned versions table."""
    return docstore_factory(partitions=PARTITIONS if request.param == "partitioned" else None)


@pytest.fixture(params=["plain"])
async def astore_both_layouts(
    request: pytest.FixtureRequest, adocstore_factory: AsyncFactory
) -> AsyncDocStore:
    """A fresh AsyncDocStore on the plain layout (see above)."""
    return await adocstore_factory()


_LAYOUT = (
    "SELECT c.relkind::text, (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid)"
    " FROM pg_class c WHERE c.oid = %s::regclass"
)


def layout_of(store: DocStore) -> tuple[str, int]:
    """The versions table's relkind ('r' plain, 'p' partitioned) and partition count."""
    with store.pool.connection() as conn:
        row = conn.execute(_LAYOUT, [f'"{store.schema}".versions']).fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


async def alayout_of(store: AsyncDocStore) -> tuple[str, int]:
    """layout_of, for the async shell."""
    async with store.pool.connection() as conn:
        row = await (await conn.execute(_LAYOUT, [f'"{store.schema}".versions'])).fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


def _count_query(
    store: DocStore | AsyncDocStore, table: str, kind: str, name: str | None
) -> tuple[str, list[str]]:
    query = f'SELECT count(*) FROM "{store.schema}".{table} WHERE kind = %s'
    if name is None:
        return query, [kind]
    return query + " AND name = %s", [kind, name]


def count_rows(store: DocStore, table: str, kind: str, name: str | None = None) -> int:
    """How many rows of ``table`` hold ``kind`` (and ``name``), by raw SQL."""
    query, params = _count_query(store, table, kind, name)
    with store.pool.connection() as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


async def acount_rows(store: AsyncDocStore, table: str, kind: str, name: str | None = None) -> int:
    """count_rows, for the async shell."""
    query, params = _count_query(store, table, kind, name)
    async with store.pool.connection() as conn:
        row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return int(row[0])


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    docstore_dsn: str, store: DocStore, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Run:
    """run(*args, stdin=None) -> (exit status, stdout, stderr): the ``docstore`` command on
    the test's own schema. The CLI test modules each give ``store`` (a plain DocStore)."""

    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capfd.readouterr()
        code = main(["--dsn", docstore_dsn, "--schema", store.schema, *args])
        out, err = capfd.readouterr()
        return code, out, err

    return invoke
