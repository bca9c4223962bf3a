"""LangGraph checkpointers on docstore: :class:`DocStoreSaver` on a :class:`DocStore`,
:class:`AsyncDocStoreSaver` on an :class:`AsyncDocStore`. Both run the plans of
``_plans`` and differ only in how they call the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from docstore import AsyncDocStore, DocStore

from . import _plans
from ._plans import Plan
from ._records import CHECKPOINTS, WRITES

__all__ = ["AsyncDocStoreSaver", "DocStoreSaver"]

T = TypeVar("T")


def _run(store: DocStore, plan: Plan[T]) -> T:
    try:
        call = next(plan)
        while True:
            call = plan.send(getattr(store, call.method)(*call.args, **call.kwargs))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def _arun(store: AsyncDocStore, plan: Plan[T]) -> T:
    try:
        call = next(plan)
        while True:
            call = plan.send(await getattr(store, call.method)(*call.args, **call.kwargs))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _add_kinds(store: DocStore | AsyncDocStore) -> None:
    for kind in (CHECKPOINTS, WRITES):
        store.kinds.add(kind)


class DocStoreSaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpointer on a :class:`~docstore.DocStore`.

    A thread's checkpoints and pending writes are items of two log kinds,
    ``langgraph_checkpoint`` and ``langgraph_write``, whose document is named by the
    thread id. The async methods run the sync ones in a worker thread; in async code use
    :class:`AsyncDocStoreSaver`.
    """

    def __init__(self, store: DocStore, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.store = store
        _add_kinds(store)

    def setup(self) -> None:
        """Create (or upgrade) the store's tables: ``store.init_schema()``."""
        self.store.init_schema()

    def _atomic(self, plan: Plan[T]) -> T:
        with self.store.transaction():
            return _run(self.store, plan)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or its namespace's newest; None if none."""
        return _run(self.store, _plans.get_tuple(self.serde, config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; ``filter`` matches metadata (containment)."""
        yield from _run(self.store, _plans.list_(self.serde, config, filter, before, limit))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint; returns the config that names it."""
        return _run(self.store, _plans.put(self.serde, config, checkpoint, metadata, new_versions))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Store a task's pending writes for the checkpoint ``config`` names."""
        _run(self.store, _plans.put_writes(self.serde, config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes, for good."""
        self._atomic(_plans.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) of these runs, in every thread."""
        self._atomic(_plans.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another."""
        self._atomic(_plans.copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint; ``delete``: all go."""
        self._atomic(_plans.prune(thread_ids, strategy))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """:meth:`get_tuple` in a worker thread."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """:meth:`list` in a worker thread."""
        found = await asyncio.to_thread(
            lambda: _run(self.store, _plans.list_(self.serde, config, filter, before, limit))
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """:meth:`put` in a worker thread."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """:meth:`put_writes` in a worker thread."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """:meth:`delete_thread` in a worker thread."""
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """:meth:`delete_for_runs` in a worker thread."""
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """:meth:`copy_thread` in a worker thread."""
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """:meth:`prune` in a worker thread."""
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


class AsyncDocStoreSaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpointer on an :class:`~docstore.AsyncDocStore` (see
    :class:`DocStoreSaver` for what it stores). Its sync methods work from threads other
    than the event loop's (LangGraph's sync API in a worker thread), as
    ``AsyncPostgresSaver``'s do.
    """

    def __init__(self, store: AsyncDocStore, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.store = store
        _add_kinds(store)
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    async def setup(self) -> None:
        """Create (or upgrade) the store's tables: ``store.init_schema()``."""
        await self.store.init_schema()

    async def _atomic(self, plan: Plan[T]) -> T:
        async with self.store.transaction():
            return await _arun(self.store, plan)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or its namespace's newest; None if none."""
        return await _arun(self.store, _plans.get_tuple(self.serde, config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first; ``filter`` matches metadata (containment)."""
        for item in await _arun(self.store, _plans.list_(self.serde, config, filter, before, limit)):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint; returns the config that names it."""
        return await _arun(self.store, _plans.put(self.serde, config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Store a task's pending writes for the checkpoint ``config`` names."""
        await _arun(self.store, _plans.put_writes(self.serde, config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes, for good."""
        await self._atomic(_plans.delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) of these runs, in every thread."""
        await self._atomic(_plans.delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another."""
        await self._atomic(_plans.copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint; ``delete``: all go."""
        await self._atomic(_plans.prune(thread_ids, strategy))

    def _sync(self, make: Callable[[], Any]) -> Any:
        """Run a coroutine on the saver's loop from another thread and wait for it."""
        if self.loop is None:
            raise RuntimeError(
                "AsyncDocStoreSaver was made outside an event loop: its sync methods need "
                "one; make it inside the loop, or use DocStoreSaver in sync code"
            )
        try:
            if asyncio.get_running_loop() is self.loop:
                raise asyncio.InvalidStateError(
                    "AsyncDocStoreSaver's sync methods cannot run on its own event loop: "
                    "use the async ones (ainvoke, astream, aget_state), or DocStoreSaver"
                )
        except RuntimeError:
            pass
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """:meth:`aget_tuple` on the saver's loop."""
        result: CheckpointTuple | None = self._sync(lambda: self.aget_tuple(config))
        return result

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """:meth:`alist` on the saver's loop."""
        found: list[CheckpointTuple] = self._sync(
            lambda: _arun(self.store, _plans.list_(self.serde, config, filter, before, limit))
        )
        yield from found

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """:meth:`aput` on the saver's loop."""
        result: RunnableConfig = self._sync(lambda: self.aput(config, checkpoint, metadata, new_versions))
        return result

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """:meth:`aput_writes` on the saver's loop."""
        self._sync(lambda: self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """:meth:`adelete_thread` on the saver's loop."""
        self._sync(lambda: self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """:meth:`adelete_for_runs` on the saver's loop."""
        self._sync(lambda: self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """:meth:`acopy_thread` on the saver's loop."""
        self._sync(lambda: self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """:meth:`aprune` on the saver's loop."""
        self._sync(lambda: self.aprune(thread_ids, strategy=strategy))
