"""Configs held in memory and kept current by the store's change feed.

A host that watches reads its configs with a dictionary lookup; another host's edit
reaches it as one change, which costs one read of that config. The watch takes a
cursor first and loads second, so no edit falls between the two (an edit seen by both
is applied once: versions only go forward, until a ``purge`` or ``prune`` change says
the document is gone for good, after which one of that name starts again at version 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import psycopg

from docstore.aio import AsyncDocStore
from docstore.change import Change, channel
from docstore.doc import Doc
from docstore.errors import ChangesPruned, CursorAheadOfServer, DocStoreError, DocumentNotFound
from docstore.store import DocStore

from .configs import CONFIG_KINDS

__all__ = ["AsyncConfigWatch", "ConfigWatch"]

OnChange = Callable[[Change], None]

RELOAD = (ChangesPruned, CursorAheadOfServer)
"""Feed errors after which the watch reloads every config and takes a new cursor."""

REMOVED = ("purge", "prune")
"""The ops of a document removed for good (a store written by release 0.1 says "prune" for
a purge too)."""


S = TypeVar("S", DocStore, AsyncDocStore)


def _on_primary(store: S) -> S:
    """``store``, or one on its primary pool only when it reads from a replica: the cursor
    is taken on the primary, so the load and each change's read must be too (a lagging
    replica would miss a config or hand back an older version)."""
    if store.read_pool is None:
        return store
    return type(store)(store.pool, schema=store.schema, kinds=store.kinds)


class _Held:
    """What both watches hold: kind -> name -> model, with each one's version."""

    def __init__(self, on_change: OnChange | None) -> None:
        self.configs: dict[str, dict[str, Any]] = {kind: {} for kind in CONFIG_KINDS}
        self.versions: dict[tuple[str, str], int] = {}
        self.error: DocStoreError | None = None
        self.cursor: str | None = None
        self._on_change = on_change
        self._cond = threading.Condition()

    def get(self, kind: str, name: str) -> Any:
        """The config as last seen; DocumentNotFound when there is none."""
        if self.error is not None:
            raise DocStoreError(
                f"the config watch stopped ({self.error}): its configs may be "
                "stale; start watch_configs() again"
            ) from self.error
        try:
            return self.configs[kind][name]
        except KeyError:
            raise DocumentNotFound(kind, name) from None

    def load(self, docs: dict[str, list[Doc[Any]]]) -> None:
        with self._cond:
            for kind, listed in docs.items():
                self.configs[kind] = {d.name: d.data for d in listed}
                # The versions of what is no longer listed go too: a document purged
                # since may come back at version 1.
                for key in [k for k in self.versions if k[0] == kind]:
                    del self.versions[key]
                for d in listed:
                    self.versions[(kind, d.name)] = d.version
            self._cond.notify_all()
        self._woken()

    def apply(self, change: Change, doc: Doc[Any] | None) -> None:
        """Hold ``doc``, read after ``change`` was delivered (None: not there then)."""
        key = (change.kind, change.name)
        with self._cond:
            if change.op in REMOVED:
                # Gone for good, history and all: a document of this name written later
                # starts again at version 1, so no version held before counts against it.
                self.versions.pop(key, None)
            held = self.versions.get(key, 0)
            if doc is None:
                # A delete delivered again after a load that saw the document written anew
                # (a higher version) must not remove it.
                if change.version >= held:
                    self.configs.setdefault(change.kind, {}).pop(change.name, None)
                    if change.op not in REMOVED:
                        self.versions[key] = change.version
            elif doc.version >= held:
                self.configs.setdefault(change.kind, {})[change.name] = doc.data
                self.versions[key] = doc.version
            self.cursor = change.cursor
            self._cond.notify_all()
        self._woken()
        if self._on_change is not None:
            self._on_change(change)

    def fail(self, error: DocStoreError) -> None:
        with self._cond:
            self.error = error
            self._cond.notify_all()
        self._woken()

    def _woken(self) -> None:
        """What held changed (the async watch wakes its waiters here)."""

    def _settled(self, kind: str, name: str, version: int) -> bool:
        """Whether a wait for ``name`` at ``version`` is over (held, or the watch failed)."""
        return self.error is not None or self.versions.get((kind, name), 0) >= version


class ConfigWatch(_Held):
    """The store's configs in memory, kept current by a feed on a thread of its own.

    Built by :meth:`StorageManager.watch_configs`; :meth:`close` (or the end of its
    ``with`` block) stops the feed and returns its connection.
    """

    def __init__(
        self,
        store: DocStore,
        *,
        listen_dsn: str | None = None,
        poll_interval: float = 5.0,
        on_change: OnChange | None = None,
    ) -> None:
        super().__init__(on_change)
        self._store = _on_primary(store)
        self._listen_dsn = listen_dsn
        self._poll_interval = poll_interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def wait_for(self, kind: str, name: str, version: int, timeout: float) -> bool:
        """Block until ``name`` is held at ``version`` or later (True), or the timeout."""
        with self._cond:
            return (
                self._cond.wait_for(lambda: self._settled(kind, name, version), timeout)
                and self.error is None
            )

    def start(self) -> ConfigWatch:
        """Take a cursor, load every config, then follow the feed from that cursor."""
        self.cursor = self._load()
        self._thread = threading.Thread(target=self._follow, name="docstore-config-watch", daemon=True)
        self._thread.start()
        return self

    def _load(self) -> str:
        cursor = self._store.change_cursor()
        self.load({kind: self._store.list(kind) for kind in CONFIG_KINDS})
        return cursor

    def _follow(self) -> None:
        idle = False  # the last reload was followed by no change before the next
        while not self._stopped.is_set():
            delivered = False
            try:
                for change in self._store.changes(
                    list(CONFIG_KINDS),
                    after=self.cursor,
                    listen_dsn=self._listen_dsn,
                    poll_interval=self._poll_interval,
                    stop=self._stopped.is_set,
                ):
                    delivered = True
                    # Read for every change, deletes and prunes included: the document
                    # may have been written anew since, and then it is what to hold.
                    try:
                        doc: Doc[Any] | None = self._store.get(change.kind, change.name)
                    except DocumentNotFound:
                        doc = None
                    self.apply(change, doc)
                return
            except RELOAD:
                # Fell behind retention (or the store moved to another cluster): reload
                # everything, then follow from there. Twice in a row with nothing
                # delivered in between, wait a poll interval first rather than spin.
                if idle and not delivered and self._stopped.wait(self._poll_interval):
                    return
                idle = not delivered
                try:
                    self.cursor = self._load()
                except DocStoreError as exc:
                    self.fail(exc)
                    return
            except DocStoreError as exc:
                self.fail(exc)
                return
            except Exception as exc:  # on_change raised: the watch stops, and says why
                self.fail(DocStoreError(f"the config watch stopped: {exc!r}"))
                return

    @property
    def running(self) -> bool:
        """True while the feed is followed and reads are current."""
        return self._thread is not None and self._thread.is_alive() and self.error is None

    def close(self) -> None:
        """Stop following the feed (wakes it at once) and wait for its thread."""
        self._stopped.set()
        if self._thread is None:
            return
        # A notification wakes the feed, which then sees stop(); if the database is
        # gone, the poll interval wakes it anyway.
        with contextlib.suppress(psycopg.Error), self._store.pool.connection() as conn:
            conn.execute("SELECT pg_notify(%s, '')", (channel(self._store.schema),))
        self._thread.join(self._poll_interval + 5)

    def __enter__(self) -> ConfigWatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncConfigWatch(_Held):
    """:class:`ConfigWatch` for asyncio: the feed runs as a task of the running loop."""

    def __init__(
        self,
        store: AsyncDocStore,
        *,
        listen_dsn: str | None = None,
        poll_interval: float = 5.0,
        on_change: OnChange | None = None,
    ) -> None:
        super().__init__(on_change)
        self._store = _on_primary(store)
        self._listen_dsn = listen_dsn
        self._poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        # Set (and replaced) each time what is held changes: the loop's own wake-up,
        # since load/apply/fail all run on the loop, in the feed's task.
        self._changed = asyncio.Event()

    def _woken(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, kind: str, name: str, version: int, timeout: float) -> bool:
        """Wait, without blocking the loop, until ``name`` is held at ``version`` or
        later (True), or the timeout (False)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._settled(kind, name, version):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return self.error is None

    async def start(self) -> AsyncConfigWatch:
        """Take a cursor, load every config, then follow the feed from that cursor."""
        self.cursor = await self._load()
        self._task = asyncio.create_task(self._follow(), name="docstore-config-watch")
        return self

    async def _load(self) -> str:
        cursor = await self._store.change_cursor()
        self.load({kind: await self._store.list(kind) for kind in CONFIG_KINDS})
        return cursor

    async def _follow(self) -> None:
        idle = False  # as ConfigWatch._follow
        while True:
            delivered = False
            try:
                async for change in self._store.changes(
                    list(CONFIG_KINDS),
                    after=self.cursor,
                    listen_dsn=self._listen_dsn,
                    poll_interval=self._poll_interval,
                ):
                    delivered = True
                    try:
                        doc: Doc[Any] | None = await self._store.get(change.kind, change.name)
                    except DocumentNotFound:
                        doc = None
                    self.apply(change, doc)
            except RELOAD:
                if idle and not delivered:
                    await asyncio.sleep(self._poll_interval)
                idle = not delivered
                try:
                    self.cursor = await self._load()
                except DocStoreError as exc:
                    self.fail(exc)
                    return
            except DocStoreError as exc:
                self.fail(exc)
                return
            except Exception as exc:  # on_change raised: the watch stops, and says why
                self.fail(DocStoreError(f"the config watch stopped: {exc!r}"))
                return

    @property
    def running(self) -> bool:
        """True while the feed is followed and reads are current."""
        return self._task is not None and not self._task.done() and self.error is None

    async def close(self) -> None:
        """Stop following the feed; its connection goes back to the pool."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def __aenter__(self) -> AsyncConfigWatch:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
