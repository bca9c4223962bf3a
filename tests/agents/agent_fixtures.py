"""Fixtures and helpers of the agents layer's tests (imported by name: a second conftest.py
would clash with tests/conftest.py under pytest's prepend import mode)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import count_rows as count_rows  # re-exported for the agent tests

from docstore import AsyncDocStore, DocStore
from docstore.agents import AsyncStorageManager, StorageManager


class AsyncManagerAsSync:
    """Presents an AsyncStorageManager with StorageManager's synchronous call style."""

    def __init__(self, manager: AsyncStorageManager, loop: asyncio.AbstractEventLoop) -> None:
        self._manager = manager
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._manager, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: self._loop.run_until_complete(attr(*a, **k))
        return attr


@pytest.fixture
def db(docstore_factory: Callable[..., DocStore]) -> DocStore:
    """A sync store on a fresh schema with the agent kinds registered, for raw checks."""
    store = docstore_factory()
    StorageManager(store)  # registers the config and conversation kinds on its registry
    return store


@pytest.fixture(params=["sync", "async"])
def manager(request: pytest.FixtureRequest, db: DocStore, docstore_dsn: str) -> Iterator[Any]:
    """A StorageManager on ``db``'s schema, once sync and once async (through an adapter)."""
    if request.param == "sync":
        yield StorageManager(DocStore(db.pool, schema=db.schema))
        return
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(AsyncDocStore.connect(docstore_dsn, schema=db.schema, max_size=4))
    try:
        yield AsyncManagerAsSync(AsyncStorageManager(store), loop)
    finally:
        loop.run_until_complete(store.close())
        loop.close()
