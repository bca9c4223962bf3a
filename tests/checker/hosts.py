"""The processes of a history: hosts (a DocStore, or an AsyncDocStore on an event loop of
its own) and change-feed consumers that stop, resume from a saved cursor, and start over.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from docstore import AsyncDocStore, Change, ChangesPruned, DatabaseUnavailable, DocStore, Registry
from docstore.agents import agent_registry

from .history import Delivery, History, Segment
from .ops import LOG, SNAPSHOT

CALL_LIMIT = 60.0
"""Seconds an async call may take before the history gives up on it (none should)."""


def kinds() -> Registry:
    """The histories' kinds, holding plain dicts. The snapshot kind is at the schema
    version of the agents layer's llm configs (which ``docstore sync`` writes, and the
    config watch reads)."""
    registry = Registry()
    registry.register(SNAPSHOT, dict, schema_version=agent_registry().get(SNAPSHOT).schema_version)
    registry.register(LOG, dict, mode="log")
    return registry


class Host:
    """One process's store. ``do(fn)`` runs ``fn(store)``; on an async host the
    coroutine it returns runs on the host's loop, and ``do`` waits for it."""

    def __init__(self, name: str, store: DocStore | AsyncDocStore, loop: _LoopThread | None):
        self.name = name
        self.store = store
        self._loop = loop

    @classmethod
    def open(cls, name: str, dsn: str, *, shell: str, schema: str, **options: Any) -> Host:
        """Connect a ``sync`` or ``async`` store (small pools, short timeouts)."""
        settings: dict[str, Any] = {"min_size": 1, "max_size": 2, "timeout": 3.0, "statement_timeout": 10.0}
        settings.update(options)
        registry = settings.pop("kinds", None) or kinds()
        if shell == "sync":
            return cls(name, DocStore.connect(dsn, schema=schema, kinds=registry, **settings), None)
        loop = _LoopThread(name)
        try:
            store = loop.run(AsyncDocStore.connect(dsn, schema=schema, kinds=registry, **settings))
        except BaseException:
            loop.close()
            raise
        return cls(name, store, loop)

    @property
    def shell(self) -> str:
        return "sync" if self._loop is None else "async"

    def do(self, fn: Callable[[Any], Any]) -> Any:
        result = fn(self.store)
        if self._loop is None or not inspect.isawaitable(result):
            return result
        return self._loop.run(result)

    def follow(
        self, after: str | None, stop: Callable[[], bool], on_change: Callable[[Change], None]
    ) -> None:
        """Follow the change feed from ``after`` until ``stop()``, handing each change on."""
        if isinstance(self.store, DocStore):
            for change in self.store.changes(after=after, poll_interval=0.05, stop=stop):
                on_change(change)
            return

        # The feed ends by itself (stop, or an error): nothing is left to close.
        async def follow(store: AsyncDocStore) -> None:
            async for change in store.changes(after=after, poll_interval=0.05, stop=stop):
                on_change(change)

        self.do(follow)

    def one_poll(self, after: str) -> list[Change]:
        """What one read of the feed after ``after`` delivers."""
        if isinstance(self.store, DocStore):
            return list(self.store.changes(after=after, poll_interval=0.01, stop=lambda: True))

        async def poll(store: AsyncDocStore) -> list[Change]:
            return [
                change async for change in store.changes(after=after, poll_interval=0.01, stop=lambda: True)
            ]

        result: list[Change] = self.do(poll)
        return result

    def close(self) -> None:
        try:
            self.do(lambda store: store.close())
        finally:
            if self._loop is not None:
                self._loop.close()


class _LoopThread:
    """An event loop running on a thread of its own, until :meth:`close`."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"checker-{name}", daemon=True)
        self._thread.start()

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Run ``awaitable`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._loop).result(CALL_LIMIT)

    def close(self) -> None:
        """Stop the loop, wait for its thread, and close it: a loop left to the garbage
        collector leaks its self-pipe's sockets (a ResourceWarning)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_LIMIT)
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class Consumer:
    """A process following the change feed on a thread of its own, as a host would: it
    keeps the cursor of the last change it handled, resumes from it after a stop or a lost
    connection, and starts over from ``change_cursor()`` when the feed says it fell
    behind (ChangesPruned) or refuses its cursor."""

    RESTART_LIMIT = 40
    """Start-overs per run before the consumer gives up (a feed that refuses every fresh
    cursor would spin for ever)."""

    def __init__(self, name: str, host: Host, history: History) -> None:
        self.name = name
        self.host = host
        self.history = history
        self.saved: str | None = None
        self.segment: Segment | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._control = threading.Lock()  # one stop, resume or start-over at a time

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start_over(self) -> None:
        """Stop, then follow from a fresh ``change_cursor()`` (a new segment)."""
        with self._control:
            self._stop()
            self._restart()
            self._resume()

    def resume(self) -> None:
        with self._control:
            self._resume()

    def stop(self) -> None:
        with self._control:
            self._stop()

    def _restart(self) -> None:
        cursor: str = self.host.do(lambda store: store.change_cursor())
        if self.segment is not None and self.segment.open:
            self.segment.end = self.history.now()
        self.segment = self.history.segment(self.name, cursor, self.history.now())
        self.saved = cursor

    def _resume(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._follow, name=f"checker-{self.name}", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(CALL_LIMIT)

    def rehost(self, host: Host) -> None:
        """Follow another store from now on (a move), keeping the saved cursor."""
        with self._control:
            self._stop()
            self.host = host

    def _deliver(self, change: Change) -> None:
        assert self.segment is not None
        self.segment.deliveries.append(
            Delivery(
                self.name,
                self.segment.index,
                self.history.now(),
                change.kind,
                change.name,
                change.version,
                change.op,
                change.written_at,
                change.cursor,
            )
        )
        self.saved = change.cursor

    def _follow(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.segment is None or self.saved is None:
                    self._restart()
                self.host.follow(self.saved, self._stopping.is_set, self._deliver)
                return
            except DatabaseUnavailable as exc:
                # Lost connections: resume from the saved cursor, in the same segment.
                if self.segment is not None:
                    self.segment.errors.append((self.history.now(), exc))
                time.sleep(0.05)
            except Exception as exc:  # ChangesPruned, a refused cursor, or worse: start over
                if self.segment is not None and self.segment.ended is None:
                    self.segment.ended, self.segment.end = exc, self.history.now()
                self.segment = None
                self.restarts += 1
                if self.restarts > self.RESTART_LIMIT:
                    return
                time.sleep(0.02 if isinstance(exc, ChangesPruned) else 0.05)
