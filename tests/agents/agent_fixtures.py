"""Fixtures and helpers of the agents layer's tests (imported by name: a second conftest.py
would clash with tests/conftest.py under pytest's prepend import mode)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
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
def manager(request: pytest.FixtureRequest, db: DocStore) -> Any:
    """A StorageManager on ``db``'s schema, once sync and once async (through an adapter,
    on the session's loop and async pool: conftest's ``sync_driven_loop``)."""
    if request.param == "sync":
        return StorageManager(DocStore(db.pool, schema=db.schema))
    loop, pool = request.getfixturevalue("sync_driven_loop")
    return AsyncManagerAsSync(AsyncStorageManager(AsyncDocStore(pool, schema=db.schema)), loop)
