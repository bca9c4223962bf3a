"""Fixtures of docstore's own suite, on top of the docstore.testing plugin.

``store`` runs each test twice: against DocStore, and against AsyncDocStore through a thin
adapter that runs each coroutine to completion, so one test body checks both shells.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from docstore import AsyncDocStore, DocStore


class AsyncAsSync:
    """Presents an AsyncDocStore with DocStore's synchronous call style."""

    def __init__(self, store: AsyncDocStore, loop: asyncio.AbstractEventLoop,
                 pool: Any) -> None:
        self._store = store
        self._loop = loop
        self.pool = pool  # a sync pool on the same database, for raw SQL in tests

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name == "iter":
            return lambda *a, **k: self._drain(attr(*a, **k))
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


@pytest.fixture
def versions_partitions() -> int | None:
    """How many hash partitions the ``store`` fixture's versions table has (None: a plain
    table). A module overrides it with ``both_layouts`` to run its tests on both."""
    return None


def both_layouts(request: pytest.FixtureRequest) -> int | None:
    """Override of ``versions_partitions`` running a module's tests on a plain and on a
    partitioned versions table: ``versions_partitions = pytest.fixture(params=LAYOUTS,
    ids=LAYOUT_IDS)(both_layouts)``."""
    value: int | None = request.param
    return value


LAYOUTS = [None, 4]  # 4 partitions: the same code paths as 16, at a quarter of the DDL
LAYOUT_IDS = ["plain", "partitioned"]


@pytest.fixture(params=["sync", "async"])
def store(request: pytest.FixtureRequest, docstore_factory: Callable[..., DocStore],
          docstore_dsn: str, versions_partitions: int | None) -> Iterator[Any]:
    """A fresh store, once as DocStore and once as AsyncDocStore."""
    sync_store = docstore_factory(partitions=versions_partitions)
    if request.param == "sync":
        yield sync_store
        return
    loop = asyncio.new_event_loop()
    astore = loop.run_until_complete(
        AsyncDocStore.connect(docstore_dsn, schema=sync_store.schema, max_size=4))
    try:
        yield AsyncAsSync(astore, loop, sync_store.pool)
    finally:
        loop.run_until_complete(astore.close())
        loop.close()


def count_rows(store: Any, table: str, kind: str, name: str | None = None) -> int:
    """How many rows of ``table`` hold ``kind`` (and ``name``), by raw SQL."""
    query = f'SELECT count(*) FROM "{store.schema}".{table} WHERE kind = %s'
    params: list[Any] = [kind]
    if name is not None:
        query += " AND name = %s"
        params.append(name)
    with store.pool.connection() as conn:
        return int(conn.execute(query, params).fetchone()[0])
