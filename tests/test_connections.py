"""Connections checked out of the pool in a process with many files open."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from pydantic import BaseModel

from docstore import DocStore


class Config(BaseModel):
    value: int


@pytest.fixture
def many_fds() -> Iterator[None]:
    """Over 1,100 descriptors open, so every new socket gets a number above 1024 (the
    ceiling of select.select), as in an agent host with many MCP servers."""
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    assert max(opened) >= 1024, "could not open fds above 1024: raise ulimit -n"
    try:
        yield
    finally:
        for fd in opened:
            os.close(fd)


def test_a_store_whose_sockets_are_above_fd_1024_still_works(
        many_fds: None, docstore_factory: Callable[..., DocStore], docstore_dsn: str) -> None:
    schema = docstore_factory().schema
    with DocStore.connect(docstore_dsn, schema=schema, min_size=1, max_size=2,
                          timeout=3) as store:
        _use(store)


def _use(store: DocStore) -> None:
    store.register("config", Config)
    sock = store.pool.getconn()
    try:
        assert sock.pgconn.socket >= 1024
    finally:
        store.pool.putconn(sock)
    for i in range(5):
        store.put("config", "a", {"value": i})
        assert store.get("config", "a").data.value == i
