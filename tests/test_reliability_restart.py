"""The server stopped and started again under an open store.

The server is a throwaway one of this test's own (tests/servers.py): the machine's server
serves other clients and is never stopped by the suite. Both shells are checked in the
same downtime.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from servers import ThrowawayServer

from docstore import AsyncDocStore, DatabaseUnavailable, DocStore

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers


class Config(BaseModel):
    value: int


def _until_ok(call: Callable[[], Any], deadline: float = 60) -> Any:
    """Call until it succeeds; every failure on the way must be DatabaseUnavailable."""
    end = time.monotonic() + deadline
    while True:
        try:
            return call()
        except DatabaseUnavailable:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


@pytest.mark.slow
def test_server_restart_clear_error_while_down_then_same_store_works_again() -> None:
    with ThrowawayServer() as server:
        _restart_under_open_stores(server)


def _restart_under_open_stores(server: ThrowawayServer) -> None:
    dsn = server.dsn
    loop = asyncio.new_event_loop()
    store = DocStore.connect(dsn, min_size=1, max_size=2, timeout=0.5)
    store.init_schema()
    astore = loop.run_until_complete(AsyncDocStore.connect(dsn, min_size=1, max_size=2, timeout=0.5))
    try:
        for s in (store, astore):
            s.register("config", Config)
        store.put("config", "a", {"value": 1})
        loop.run_until_complete(astore.get("config", "a"))
        server.stop("fast")
        try:
            with pytest.raises(DatabaseUnavailable) as read_err:
                store.get("config", "a")
            with pytest.raises(DatabaseUnavailable) as write_err:
                store.put("config", "a", {"value": 2})
            with pytest.raises(DatabaseUnavailable) as async_err:
                loop.run_until_complete(astore.get("config", "a"))
        finally:
            server.start()
        for err in (read_err, write_err, async_err):
            message = str(err.value)
            assert "config 'a'" in message and "connection" in message, message
            assert "safe to retry" in message
        # The same store objects, no rebuild: they reconnect on their own.
        assert _until_ok(lambda: store.get("config", "a")).version == 1
        assert _until_ok(lambda: store.put("config", "a", {"value": 2})).version == 2
        doc = _until_ok(lambda: loop.run_until_complete(astore.get("config", "a")))
        assert doc.data.value == 2
    finally:
        store.close()
        loop.run_until_complete(astore.close())
        loop.close()
