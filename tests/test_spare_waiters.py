"""Callers outnumbering a store's pool all get a connection while its spare comes and
goes: a connection given back while anyone is taking one goes to the pool's waiters,
not to the spare (docstore._spare_async). A pool of two and a timeout of 3 s. (The case
that timed out while the spare ignored waiters is tests/test_async_transactions.py's
gather after a transaction block.)"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from docstore import AsyncDocStore, DocStore


def test_threads_outnumbering_the_sync_pool_all_get_a_connection(
    docstore_dsn: str, docstore_store: DocStore
) -> None:
    with DocStore.connect(
        docstore_dsn, schema=docstore_store.schema, min_size=2, max_size=2, timeout=3
    ) as store:
        store.register("cfg", dict)
        store.put("cfg", "a", {"n": 1})

        def reads(_: int) -> list[Any]:
            return [store.get("cfg", "a").data for _ in range(20)]

        with ThreadPoolExecutor(8) as ex:
            got = list(ex.map(reads, range(8)))
    assert got == [[{"n": 1}] * 20] * 8


def test_tasks_outnumbering_the_async_pool_all_get_a_connection(
    docstore_dsn: str, docstore_store: DocStore
) -> None:
    async def main() -> list[Any]:
        store = await AsyncDocStore.connect(
            docstore_dsn, schema=docstore_store.schema, min_size=2, max_size=2, timeout=3
        )
        try:
            store.register("chat", dict, mode="log")
            for i in range(20):
                await store.append("chat", f"c{i}", [{"i": i}])

            async def read(i: int) -> list[Any]:
                return list(await store.read("chat", f"c{i}"))

            async with store.transaction():  # its connection, given back, is the spare
                await store.append("chat", "c0", [{"i": 0}])
            got: list[Any] = await asyncio.gather(*(read(i) for i in range(20)))
            return got
        finally:
            await store.close()

    assert asyncio.run(main()) == [[{"i": 0}, {"i": 0}]] + [[{"i": i}] for i in range(1, 20)]
