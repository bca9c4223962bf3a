"""Fixtures of docstore's own suite, on top of the docstore.testing plugin.

``store`` runs each test twice: against DocStore, and against AsyncDocStore through a thin
adapter that runs each coroutine to completion, so one test body checks both shells.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from docstore import AsyncDocStore, DocStore
from docstore.cli import main


class AsyncAsSync:
    """Presents an AsyncDocStore with DocStore's synchronous call style."""

    def __init__(self, store: Any, loop: asyncio.AbstractEventLoop, pool: Any) -> None:
        self._store = store
        self._loop = loop
        self.pool = pool  # a sync pool on the same database, for raw SQL in tests

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name == "iter":
            return lambda *a, **k: self._drain(attr(*a, **k))
        if name in ("documents", "log"):  # a handle: its methods too, driven by the loop
            return lambda *a, **k: AsyncAsSync(attr(*a, **k), self._loop, self.pool)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: self._loop.run_until_complete(attr(*a, **k))
        return attr

    def _drain(self, agen: Any) -> Iterator[Any]:
        while True:
            try:
                yield self._loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError("test transactions with an async test, not through the adapter")


PARTITIONS = 4  # the same code paths as 16, at a quarter of the DDL


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


def _open_store(param: str, docstore_factory: Callable[..., DocStore], docstore_dsn: str) -> Iterator[Any]:
    """``sync`` or ``async``, with ``-partitioned`` for a hash-partitioned versions table."""
    shell, _, layout = param.partition("-")
    sync_store = docstore_factory(partitions=PARTITIONS if layout == "partitioned" else None)
    if shell == "sync":
        yield sync_store
        return
    loop = asyncio.new_event_loop()
    astore = loop.run_until_complete(
        AsyncDocStore.connect(docstore_dsn, schema=sync_store.schema, max_size=4)
    )
    try:
        yield AsyncAsSync(astore, loop, sync_store.pool)
    finally:
        loop.run_until_complete(astore.close())
        loop.close()


@pytest.fixture(params=["sync", "async"])
def store(
    request: pytest.FixtureRequest, docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> Iterator[Any]:
    """A fresh store, once as DocStore and once as AsyncDocStore."""
    yield from _open_store(request.param, docstore_factory, docstore_dsn)


@pytest.fixture(params=["sync", "async", "sync-partitioned"])
def store_both_layouts(
    request: pytest.FixtureRequest, docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> Iterator[Any]:
    """As ``store``, plus a DocStore whose versions table is hash-partitioned. A module
    runs its tests on both layouts with ``store = pytest.fixture(on_both_layouts)``. The
    layout is a matter of SQL, which both shells share, so the async shell runs on the
    plain layout only."""
    yield from _open_store(request.param, docstore_factory, docstore_dsn)


def on_both_layouts(store_both_layouts: Any) -> Any:
    """The ``store`` of a module whose tests run on both layouts (see above)."""
    return store_both_layouts


def layout_of(store: Any) -> tuple[str, int]:
    """The versions table's relkind ('r' plain, 'p' partitioned) and partition count."""
    with store.pool.connection() as conn:
        row = conn.execute(
            "SELECT c.relkind::text, (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid)"
            " FROM pg_class c WHERE c.oid = %s::regclass",
            [f'"{store.schema}".versions'],
        ).fetchone()
    return str(row[0]), int(row[1])


def count_rows(store: Any, table: str, kind: str, name: str | None = None) -> int:
    """How many rows of ``table`` hold ``kind`` (and ``name``), by raw SQL."""
    query = f'SELECT count(*) FROM "{store.schema}".{table} WHERE kind = %s'
    params: list[Any] = [kind]
    if name is not None:
        query += " AND name = %s"
        params.append(name)
    with store.pool.connection() as conn:
        return int(conn.execute(query, params).fetchone()[0])


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
