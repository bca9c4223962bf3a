"""A task created inside ``async with store.transaction()`` inherits the context that
pins the block's connection. Once the block has ended, that connection is no longer the
task's: its writes must raise, never return a version and then vanish in another
request's rolled-back transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from docstore import AsyncDocStore, DocStore, DocStoreError, TransactionEnded


class Message(BaseModel):
    text: str


def test_a_task_outliving_its_transaction_block_cannot_write_through_it(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    schema = docstore_factory().schema

    async def main() -> tuple[Any, list[str]]:
        store = await AsyncDocStore.connect(docstore_dsn, schema=schema, min_size=1, max_size=1)
        store.register("chat", Message, mode="log")
        try:
            block_done = asyncio.Event()
            other_open = asyncio.Event()

            async def late_writer() -> int:
                await block_done.wait()
                await other_open.wait()
                return await store.append("chat", "late", [{"text": "from the child task"}])

            async with store.transaction():
                await store.append("chat", "parent", [{"text": "in the block"}])
                child = asyncio.create_task(late_writer())
            block_done.set()

            class Rollback(Exception):
                pass

            # Another request's transaction, which rolls back, holds the only connection
            # while the child task writes.
            with pytest.raises(Rollback):
                async with store.transaction():
                    await store.append("chat", "other", [{"text": "rolled back"}])
                    other_open.set()
                    await asyncio.sleep(0.2)
                    raise Rollback
            outcome: Any
            try:
                outcome = await child
            except DocStoreError as exc:
                outcome = exc
            names = [d.name for d in await store.list("chat")]
            return outcome, names
        finally:
            await store.close()

    outcome, names = asyncio.run(main())
    if isinstance(outcome, int):
        assert "late" in names, "the child's append returned a version, then vanished"
    assert isinstance(outcome, TransactionEnded), outcome
    assert "transaction" in str(outcome) and "ended" in str(outcome)
    assert names == ["parent"]


def test_tasks_started_and_awaited_inside_the_block_still_join_it(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    schema = docstore_factory().schema

    async def main() -> list[str]:
        store = await AsyncDocStore.connect(docstore_dsn, schema=schema, min_size=1, max_size=1)
        store.register("chat", Message, mode="log")
        try:
            with pytest.raises(RuntimeError):
                async with store.transaction():
                    await asyncio.gather(*(store.append("chat", f"c{i}", [{"text": "x"}]) for i in range(3)))
                    raise RuntimeError("roll back")
            await asyncio.gather(*(store.append("chat", f"d{i}", [{"text": "x"}]) for i in range(3)))
            return [d.name for d in await store.list("chat")]
        finally:
            await store.close()

    assert asyncio.run(main()) == ["d0", "d1", "d2"]


def test_concurrent_reads_of_tasks_sharing_the_blocks_connection_each_get_their_own_rows(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    # Outside a block each call has its pooled connection to itself (and reuses that
    # connection's cursor); inside one, tasks share the block's connection, so each
    # statement needs a cursor of its own.
    schema = docstore_factory().schema

    async def main() -> tuple[list[list[str]], list[list[str]]]:
        store = await AsyncDocStore.connect(docstore_dsn, schema=schema, min_size=2, max_size=2)
        store.register("chat", Message, mode="log")
        try:
            for i in range(20):
                await store.append("chat", f"c{i}", [{"text": f"c{i}-{j}"} for j in range(i % 5 + 1)])

            async def texts(i: int) -> list[str]:
                return [m.text for m in await store.read("chat", f"c{i}")]

            async with store.transaction():
                inside = await asyncio.gather(*(texts(i) for i in range(20)))
            outside = await asyncio.gather(*(texts(i) for i in range(20)))
            return inside, outside
        finally:
            await store.close()

    inside, outside = asyncio.run(main())
    expected = [[f"c{i}-{j}" for j in range(i % 5 + 1)] for i in range(20)]
    assert inside == expected
    assert outside == expected
