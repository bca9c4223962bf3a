"""Connections checked out of the pool: in a process with many files open, and what an idle
one keeps of the store's last statement."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from psycopg.rows import dict_row
from pydantic import BaseModel

from docstore import DocStore


class Config(BaseModel):
    value: int


@pytest.fixture
def many_fds() -> Iterator[Callable[[], None]]:
    """Over 1,100 descriptors open, so every new socket gets a number above 1024 (the
    ceiling of select.select), as in an agent host with many MCP servers."""
    opened: list[int] = []
    try:
        yield _fill_low_fds(opened)
    finally:
        for fd in opened:
            os.close(fd)


def _fill_low_fds(opened: list[int]) -> Callable[[], None]:
    """A function that takes every free descriptor below 1030 (os.open returns the lowest
    free one), to call again right before connecting: another thread may free some."""

    def fill() -> None:
        while True:
            opened.append(os.open(os.devnull, os.O_RDONLY))
            if opened[-1] >= 1030:
                return

    fill()
    return fill


def test_a_store_whose_sockets_are_above_fd_1024_still_works(
    many_fds: Callable[[], None], docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    schema = docstore_factory().schema
    many_fds()
    with DocStore.connect(docstore_dsn, schema=schema, min_size=1, max_size=2, timeout=3) as store:
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


class Blob(BaseModel):
    text: str


def test_an_idle_pooled_connection_keeps_a_small_last_result_but_never_a_large_one(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    # A pooled connection reuses one cursor for the store's statements (a new cursor per
    # statement cost ~15 us of client CPU); a cursor holds its last result and parameters
    # until its next statement, so one that read many rows, or sent or read a large
    # document, is let go rather than kept while idle.
    schema = docstore_factory().schema

    def kept(store: DocStore) -> Any:
        with store.pool.connection() as conn:
            return getattr(conn, "_docstore_cursor", None)

    with DocStore.connect(docstore_dsn, schema=schema, min_size=1, max_size=1) as store:
        store.register("config", Config)
        store.register("blob", Blob)
        store.put_many("config", {f"c{i:03}": {"value": i} for i in range(200)})
        assert store.get("config", "c007").data.value == 7
        cursor = kept(store)
        assert cursor is not None and cursor.pgresult is not None and cursor.pgresult.ntuples == 1
        assert len(store.list("config")) == 200
        assert kept(store) is None
        # The next statement works, on a cursor made afresh, which is kept again.
        assert store.get("config", "c199").data.value == 199
        assert kept(store) is not None
        big = "x" * 200_000
        store.put("blob", "big", {"text": big})  # a cursor keeps its parameters too
        assert kept(store) is None
        store.put("blob", "small", {"text": "y"})
        assert kept(store) is not None
        assert store.get("blob", "big").data.text == big
        assert kept(store) is None
        store.register("notes", Blob, mode="log")
        assert store.append("notes", "n", [{"text": big}]) == 1
        assert kept(store) is None


def test_a_row_factory_set_on_a_pooled_connection_does_not_change_what_the_store_reads(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    # The pool is public, for SQL beside the store, and keeps what a user sets on a
    # connection; the store's statements read tuples whatever the connection's default.
    schema = docstore_factory().schema
    with DocStore.connect(docstore_dsn, schema=schema, min_size=1, max_size=1) as store:
        store.register("config", Config)
        store.register("blob", Blob, mode="log")
        with store.pool.connection() as conn:
            conn.row_factory = dict_row
        store.put("config", "a", {"value": 1})
        store.put_many("config", {f"c{i:03}": {"value": i} for i in range(100)})
        assert store.get("config", "a").data.value == 1
        assert len(store.list("config")) == 101
        assert store.get("config", "c042").data.value == 42
        assert store.append("blob", "n", [{"text": "t"}]) == 1
        assert [b.text for b in store.read("blob", "n")] == ["t"]
        with store.pool.connection() as conn:
            assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}  # theirs stays
