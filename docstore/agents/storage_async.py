"""AsyncStorageManager: the agent framework's optional persistence.

Configs and conversation history of an agent host, on an :class:`~docstore.AsyncDocStore`.
Persistence that is on never drops a save: every failure raises a
:class:`~docstore.DocStoreError`. The session history is :class:`AsyncHistory`;
config sync validates with :mod:`._config_sync` before any SQL runs.

docstore/agents/storage.py is generated from docstore/agents/storage_async.py by
.ci/async_to_sync.py (``async`` and ``await`` taken out, the asyncio names replaced by
their synchronous ones): edit storage_async.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import errors as pge
from psycopg import sql

from docstore.aio import AsyncDocStore
from docstore.change import Change
from docstore.doc import Doc
from docstore.dsn import check_dsn
from docstore.errors import DocStoreError, DocumentNotFound

from ._config_sync import (
    SyncReport,
    coerce_config,
    collect,
    config_name,
    index_configs,
    index_group,
    workflow_kind,
)
from ._history_async import AsyncHistory, fetch, list_page
from ._kinds import register_kinds
from ._layout import (
    COUNT_TRIGGERS,
    DDL_STATE,
    INDEX_STATE,
    AgentStatement,
    agent_ddl,
    all_heads,
    ddl_mark,
    qa_page,
    translate,
    view_name,
)
from ._sessions import QA_RESULT, qa_record, qa_row
from ._settings import CONVERSATION, StorageConfigError, conversation_name, settings_from_env
from ._telemetry import traced_call
from ._watch import AsyncConfigWatch
from .configfiles import ConfigProblem, load_configs
from .configs import (
    CONFIG_KINDS,
    AgentConfig,
    CustomWorkflowConfig,
    GraphWorkflowConfig,
    LinearWorkflowConfig,
    LLMConfig,
    MCPServerConfig,
)

__all__ = [
    "CONVERSATION",
    "AsyncStorageManager",
    "StorageConfigError",
    "SyncReport",
    "conversation_name",
    "sync_path",
]

Configs = Mapping[str, Any] | Iterable[Any] | None
"""Configs by name, or just configs (each names itself); models or dicts."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: configs stored so far, of how many."""

SYNC_BATCH = 1000
"""Configs per statement of a sync (put_many's own chunk)."""

AGENTS_DDL_PATIENCE = 600
"""Seconds init_db waits for another process running the agents layer's DDL."""


class AsyncStorageManager:
    """Configs and conversation history of an agent host, in docstore (asyncio API).

    Build it with :meth:`from_env` (None when ``AURITE_ENABLE_DB`` is off), :meth:`connect`,
    or around a :class:`~docstore.AsyncDocStore`; the config kinds and the ``conversation``
    kind are registered on the store where missing.
    """

    def __init__(self, store: AsyncDocStore, *, owns_store: bool = False) -> None:
        self.store = store
        # The framework's SessionManager uses its storage only when ``_engine`` is truthy
        # (its own manager keeps its SQLAlchemy engine there): the store is ours.
        self._engine = store
        self._owns_store = owns_store
        register_kinds(store.kinds)
        self._history = AsyncHistory(store)
        self._watch: AsyncConfigWatch | None = None

    @classmethod
    async def connect(
        cls, dsn: str | None = None, *, schema: str | None = None, **pool_options: Any
    ) -> AsyncStorageManager:
        """Open a store on ``dsn`` in ``schema``, read as :meth:`AsyncDocStore.connect`
        reads them (else ``DOCSTORE_URL`` / ``DOCSTORE_SCHEMA``); :meth:`close` closes it."""
        store = await AsyncDocStore.connect(dsn, schema=schema, **pool_options)
        return cls(store, owns_store=True)

    @classmethod
    async def from_env(
        cls, *, schema: str | None = None, environ: Mapping[str, str] | None = None, **pool_options: Any
    ) -> AsyncStorageManager | None:
        """A manager configured by ``AURITE_*`` variables, or None when persistence is off.

        ``schema`` overrides ``AURITE_DB_SCHEMA`` (default ``docstore``). Raises
        :class:`StorageConfigError` naming a missing variable, and
        :class:`~docstore.DatabaseUnavailable` when the database does not answer.
        ``AURITE_DB_READ_URL`` (optional) sends reads to a streaming replica.
        """
        settings = settings_from_env(environ, schema)
        if settings is None:
            return None
        if settings.read_dsn:
            pool_options.setdefault("read_dsn", settings.read_dsn)
        return await cls.connect(settings.dsn, schema=settings.schema, **pool_options)

    async def close(self) -> None:
        """Stop watching configs, and close the store if this manager opened it."""
        if self._watch is not None:
            await self._watch.close()
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> AsyncStorageManager:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncStorageManager {self.store!r}>"

    # --- set-up ------------------------------------------------------------------------

    @traced_call
    async def init_db(self) -> None:
        """Create docstore's tables if missing, or upgrade a store an earlier release made
        to this one's layout, online; then the agents layer's own DDL (agents.sql: the
        ``messages`` view, the indexes of the framework's session list), its indexes built
        CONCURRENTLY. Idempotent, safe from many processes at once; on a store that has
        it all, two statements."""
        await self.store.init_schema()
        schema = self.store.schema
        try:
            async with self.store.pool.connection() as conn:
                if await self._agents_ddl_done(conn):
                    return
                # One process at a time: two CONCURRENTLY builds on one table can
                # deadlock, and two CREATE OR REPLACE VIEW at once fail.
                if not await self._lock(conn, True):
                    return  # done meanwhile by the process that held the lock
                try:
                    if await self._agents_ddl_done(conn):
                        return
                    for stmt in agent_ddl(schema):
                        if stmt.index is None:
                            await conn.execute(stmt.text)
                        else:
                            await self._build_index(conn, schema, stmt)
                finally:
                    await self._lock(conn, False)
        except psycopg.Error as exc:
            raise translate(schema, "the agents layer's DDL (agents.sql)", exc) from exc

    async def _agents_ddl_done(self, conn: Any) -> bool:
        """Whether agents.sql ran to its end on this store (its mark, its indexes valid)."""
        schema = self.store.schema
        indexes = [stmt.index for stmt in agent_ddl(schema) if stmt.index is not None]
        cur = await conn.execute(
            DDL_STATE,
            {
                "view": view_name(schema),
                "mark": ddl_mark(),
                "schema": schema,
                "indexes": indexes,
                "triggers": COUNT_TRIGGERS,
            },
        )
        done = await cur.fetchone()
        return done is not None and bool(done[0])

    async def _lock(self, conn: Any, take: bool) -> bool:
        """Take (``take``) or let go of the session lock of the agents layer's DDL. The
        wait is a poll with a pause on the server, never a blocked lock request: a waiting
        statement's snapshot would hold up the holder's CONCURRENTLY build, which waits
        for older snapshots. False when the DDL was done by the holder meanwhile."""
        key = ["docstore.agents:" + self.store.schema]
        if not take:
            await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", key)
            return True
        for _attempt in range(AGENTS_DDL_PATIENCE * 10):
            cur = await conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", key)
            got = await cur.fetchone()
            if got is not None and got[0]:
                return True
            await conn.execute("SELECT pg_sleep(0.1)")  # on the server: no event loop assumed
            if await self._agents_ddl_done(conn):
                return False
        raise DocStoreError(
            f"schema {self.store.schema!r}: another process has held the agents layer's DDL lock "
            f"for {AGENTS_DDL_PATIENCE} s (building an index of a large store?); run init_db() again"
        )

    async def _build_index(self, conn: Any, schema: str, stmt: AgentStatement) -> None:
        """CREATE INDEX CONCURRENTLY ``stmt``, whatever an earlier attempt left: an index
        another process builds is waited for, an invalid one nobody builds (a build cut
        short) dropped and built again."""
        name = sql.Identifier(schema).as_string(None) + "." + sql.Identifier(str(stmt.index)).as_string(None)
        for _attempt in range(600):
            cur = await conn.execute(INDEX_STATE, {"schema": schema, "name": stmt.index})
            state = await cur.fetchone()
            if state is not None and state[0]:
                return
            if state is not None and state[1]:
                await conn.execute("SELECT pg_sleep(0.2)")  # on the server: no event loop assumed
                continue
            if state is not None:
                await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                continue
            try:
                await conn.execute(stmt.text)
            except (pge.DuplicateTable, pge.UniqueViolation):
                continue  # another process made it at the same moment: look again
        raise DocStoreError(f"schema {schema!r}: index {stmt.index} is still not built; run init_db() again")

    # --- configs -----------------------------------------------------------------------

    @traced_call
    async def sync_agent_config(self, config: AgentConfig | Mapping[str, Any]) -> Doc[AgentConfig]:
        """Store an agent config; an unchanged one writes nothing."""
        return await self._put_config("agent", config)

    @traced_call
    async def sync_llm_config(self, config: LLMConfig | Mapping[str, Any]) -> Doc[LLMConfig]:
        """Store an LLM config; an unchanged one writes nothing."""
        return await self._put_config("llm", config)

    @traced_call
    async def sync_mcp_server_config(
        self, config: MCPServerConfig | Mapping[str, Any]
    ) -> Doc[MCPServerConfig]:
        """Store an MCP server config; an unchanged one writes nothing."""
        return await self._put_config("mcp_server", config)

    @traced_call
    async def sync_workflow_config(
        self, config: LinearWorkflowConfig | GraphWorkflowConfig | Mapping[str, Any]
    ) -> Doc[LinearWorkflowConfig | GraphWorkflowConfig]:
        """Store a linear (or graph) workflow config; an unchanged one writes nothing."""
        return await self._put_config(workflow_kind(config), config)

    @traced_call
    async def sync_custom_workflow_config(
        self, config: CustomWorkflowConfig | Mapping[str, Any]
    ) -> Doc[CustomWorkflowConfig]:
        """Store a custom workflow config; an unchanged one writes nothing."""
        return await self._put_config("custom_workflow", config)

    @traced_call
    async def sync_all_configs(
        self,
        agents: Configs = None,
        workflows: Configs = None,
        custom_workflows: Configs = None,
        llm_configs: Configs = None,
        mcp_servers: Configs = None,
    ) -> SyncReport:
        """Store all these configs in one transaction: every one, or (on any error) none.

        ``workflows`` may mix linear and graph workflows.
        """
        configs = collect(
            {
                "agent": agents,
                "linear_workflow": workflows,
                "custom_workflow": custom_workflows,
                "llm": llm_configs,
                "mcp_server": mcp_servers,
            }
        )
        return await self._sync_many(configs)

    @traced_call
    async def sync_path(
        self, *paths: str | Path, partial: bool = False, progress: Progress | None = None
    ) -> SyncReport:
        """Sync config files, first path first (see :func:`sync_path`)."""
        loaded = load_configs(*paths)
        if loaded.problems and not partial:
            return SyncReport(problems=tuple(loaded.problems), applied=False, warnings=tuple(loaded.warnings))
        return await self._sync_many(loaded.configs, loaded.problems, loaded.warnings, progress)

    @traced_call
    async def load_all_configs(self) -> dict[str, dict[str, Any]]:
        """Every stored config: kind -> name -> model (one statement for all kinds)."""
        out: dict[str, dict[str, Any]] = {kind: {} for kind in CONFIG_KINDS}
        for kind, name, value in await self._all_configs():
            out[kind][name] = value
        return out

    async def _all_configs(self) -> list[tuple[str, str, Any]]:
        """(kind, name, value) of every live config of the registered config kinds, read
        in one statement and parsed (upgraded where older) as each kind's list() does."""
        kinds = [kind for kind in CONFIG_KINDS if kind in self.store.kinds]
        query, params = all_heads(self.store.schema, kinds)
        rows = await fetch(self.store, query, params, "loading configs")
        return [
            (kind, name, self.store.kinds.get(kind).parse(name, version, data, schema_version))
            for kind, name, version, schema_version, data in rows
        ]

    @traced_call
    async def watch_configs(
        self,
        *,
        listen_dsn: str | None = None,
        poll_interval: float = 5.0,
        on_change: Callable[[Change], None] | None = None,
    ) -> AsyncConfigWatch:
        """Hold every config in memory, kept current by the change feed, and serve
        :meth:`get_config` from it: a dictionary lookup, not a round trip.

        Another host's edit arrives within milliseconds (``on_change`` is told of each).
        ``listen_dsn``: a direct connection for the feed, when the pool's go through
        pgbouncer in transaction mode. Stops with :meth:`close` or the watch's own.
        """
        if listen_dsn is not None:  # refused here, not on the watch's own task later
            check_dsn(listen_dsn, "listen_dsn")
        if self._watch is not None:
            await self._watch.close()
        self._watch = await AsyncConfigWatch(
            self.store, listen_dsn=listen_dsn, poll_interval=poll_interval, on_change=on_change
        ).start()
        return self._watch

    @traced_call
    async def get_config(self, kind: str, name: str) -> Any:
        """A config by kind and name: from memory while :meth:`watch_configs` runs, else
        read from the store. DocumentNotFound when there is none."""
        if self._watch is not None and self._watch.running:
            return self._watch.get(kind, name)
        return (await self.store.get(kind, name)).data

    @traced_call
    async def sync_index_to_db(self, component_index: Mapping[str, Mapping[str, Any]]) -> SyncReport:
        """Store the framework's component index (type -> name -> config) in one
        transaction: every config, or (on any error) none. An unchanged config writes
        nothing; a changed one writes one version."""
        return await self._sync_many(index_configs(component_index))

    @traced_call
    async def load_index_from_db(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every stored config as the framework indexes it (type -> name -> dict): what
        :meth:`sync_index_to_db` was given, key for key (a value the framework's model
        coerces, such as ``"15.0"`` for a number, as the model reads it)."""
        index: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, name, value in await self._all_configs():
            data = self.store.kinds.get(kind).adapter.dump_python(value, mode="json", by_alias=True)
            index.setdefault(index_group(kind, data), {})[name] = data
        return index

    @traced_call
    async def delete_component(self, component_name: str) -> bool:
        """Delete the configs named ``component_name`` (their versions stay readable);
        False when there was none."""
        deleted = False
        async with self.store.transaction():
            for kind in CONFIG_KINDS:
                if kind not in self.store.kinds:
                    continue
                try:
                    await self.store.delete(kind, component_name)
                except DocumentNotFound:
                    continue
                deleted = True
        return deleted

    async def _put_config(self, kind: str, value: Any) -> Doc[Any]:
        model = coerce_config(kind, value)
        return await self.store.put(kind, config_name(model), model)

    async def _sync_many(
        self,
        configs: Mapping[str, Mapping[str, Any]],
        problems: Sequence[ConfigProblem] = (),
        warnings: Sequence[ConfigProblem] = (),
        progress: Progress | None = None,
    ) -> SyncReport:
        """Store every config in one transaction; report what changed. ``progress(done,
        total)`` after each batch of configs stored."""
        written: list[tuple[str, str, int]] = []
        unchanged: list[tuple[str, str]] = []
        created: list[tuple[str, str]] = []
        total = sum(len(by_name) for by_name in configs.values())
        done = 0
        if progress is not None:
            progress(0, total)
        async with self.store.transaction():
            for kind, by_name in configs.items():
                items = list(by_name.items())
                # In batches, for progress: one statement per batch, as put_many's own.
                for start in range(0, len(items), SYNC_BATCH):
                    batch = dict(items[start : start + SYNC_BATCH])
                    for doc in await self.store.put_many(kind, batch):
                        if not doc.changed:
                            unchanged.append((kind, doc.name))
                            continue
                        written.append((kind, doc.name, doc.version))
                        if await self._created(kind, doc):
                            created.append((kind, doc.name))
                    done += len(batch)
                    if progress is not None:
                        progress(done, total)
        return SyncReport(
            tuple(written),
            tuple(unchanged),
            tuple(problems),
            warnings=tuple(warnings),
            created=tuple(created),
        )

    async def _created(self, kind: str, doc: Doc[Any]) -> bool:
        """Whether a put that wrote ``doc`` created it (there was no live version before)."""
        if doc.version == 1:
            return True
        if doc.created_at != doc.updated_at:
            return False  # an update: the head's created_at is older than this write
        # A head re-created after a delete, or one created earlier in this same outer
        # transaction (whose now() both timestamps hold): the version before tells.
        try:
            before = await self.store.get(kind, doc.name, version=doc.version - 1)
        except DocumentNotFound:
            return True  # pruned: nothing live to have updated
        return before.deleted

    # --- history -----------------------------------------------------------------------

    @traced_call
    async def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = 50
    ) -> list[dict[str, Any]]:
        """The session's last ``limit`` messages, oldest first, as dicts.

        ``limit`` <= 0 (or None) reads them all; no ``session_id`` gives [].
        """
        return await self._history.load(agent_name, session_id, limit)

    @traced_call
    async def save_full_history(
        self,
        agent_name: str,
        session_id: str | None,
        conversation: Sequence[Any],
        *,
        workflow_name: str | None = None,
        parent_session_id: str | None = None,
    ) -> int:
        """Store the session's whole conversation; returns how many messages were written.

        Only the messages not stored yet are appended when the conversation extends the
        stored one; otherwise it replaces it (the old messages stay readable by version).
        No ``session_id``: nothing is stored.
        """
        return await self._history.save(
            agent_name, session_id, conversation, workflow_name, parent_session_id
        )

    @traced_call
    async def append_history(
        self,
        agent_name: str,
        session_id: str | None,
        messages: Sequence[Any],
        *,
        workflow_name: str | None = None,
        parent_session_id: str | None = None,
    ) -> int:
        """Append new messages to the session (one head read and one write, whatever its
        length); returns how many were written. No ``session_id``: nothing is stored."""
        return await self._history.append(agent_name, session_id, messages, workflow_name, parent_session_id)

    @traced_call
    async def list_sessions(self, agent_name: str | None = None) -> list[Doc[Any]]:
        """Conversation heads (meta, message count, times), of one agent or of all."""
        where = None if agent_name is None else {"agent_name": agent_name}
        return await self.store.list(CONVERSATION, where=where)

    # --- the framework's storage interface (aurite 0.4.2) --------------------------------

    @traced_call
    async def save_session(self, session_data: Mapping[str, Any]) -> bool:
        """Store a session record of the framework (``session_id``, ``execution_result``,
        ``name``, ``result_type``, ``base_session_id``, ``agents_involved``, ...).

        The result's ``conversation_history`` is the session's log: a save that extends it
        appends only the new messages. Returns True; every failure raises.
        """
        return await self._history.save_session(session_data)

    @traced_call
    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        """The session record as it was saved, with the store's ``created_at`` and
        ``last_updated`` (naive UTC, ISO 8601); None when there is none."""
        return await self._history.get_session(session_id)

    @traced_call
    async def get_sessions_list(
        self,
        agent_name: str | None = None,
        workflow_name: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """(rows, total): sessions newest first, a workflow's runs or an agent's own runs."""
        return await self._history.get_sessions_list(agent_name, workflow_name, limit, offset)

    @traced_call
    async def delete_session(self, session_id: str) -> bool:
        """Hide a session behind a tombstone (a workflow's takes its agents' sessions
        sharing its ``base_session_id``); False when there was none. Every framework call
        then acts as if it were gone; :meth:`restore_session` brings it back, and only
        docstore's retention (``prune``, ``purge``) removes it for good."""
        return await self._history.delete_session(session_id)

    @traced_call
    async def cleanup_old_sessions(self, days: int = 30, max_sessions: int = 50) -> int:
        """Hide sessions not written for ``days``, then all but the newest
        ``max_sessions``, as :meth:`delete_session` does; returns how many were hidden."""
        return await self._history.cleanup_old_sessions(days, max_sessions)

    @traced_call
    async def restore_session(self, session_id: str) -> bool:
        """Bring back a session hidden by :meth:`delete_session` or
        :meth:`cleanup_old_sessions`, messages and all (a workflow's with the agents'
        sessions in its ``agents_involved``); False when it is gone for good or never was."""
        return await self._history.restore_session(session_id)

    @traced_call
    async def get_session_history(self, session_id: str) -> list[dict[str, Any]] | None:
        """The session's conversation; None for no session, or a workflow's."""
        return await self._history.get_session_history(session_id)

    @traced_call
    async def save_qa_result(self, result_data: Mapping[str, Any]) -> bool:
        """Store a QA test result under its ``result_id`` (a re-save writes a version)."""
        result_id, record = qa_record(result_data)
        await self.store.put(QA_RESULT, result_id, record)
        return True

    @traced_call
    async def get_qa_result(self, result_id: str) -> dict[str, Any] | None:
        """A QA test result with its ``result``; None when there is none."""
        try:
            doc = await self.store.get(QA_RESULT, result_id)
        except DocumentNotFound:
            return None
        return qa_row(doc.name, doc.data, doc.created_at, full=True)

    @traced_call
    async def get_qa_results_list(
        self,
        evaluation_config_id: str | None = None,
        component_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """(rows without their ``result``, total), newest first: one statement, reading
        only the page's results (through agents.sql's index) at any offset."""
        match = {
            k: v
            for k, v in (("evaluation_config_id", evaluation_config_id), ("component_type", component_type))
            if v
        }
        page = await list_page(
            self.store,
            lambda counted: qa_page(self.store.schema, match, limit, offset, counted),
            "listing QA results",
        )
        adapter = self.store.kinds.get(QA_RESULT).adapter
        return [
            qa_row(name, adapter.validate_python(data), created, full=False)
            for name, data, _items, created, _updated in page.rows
        ], page.total

    @traced_call
    async def delete_qa_result(self, result_id: str) -> bool:
        """Delete a QA test result for good; False when there was none."""
        gone = await self.store.purge(QA_RESULT, [result_id])
        return bool(gone)


async def sync_path(
    target: AsyncStorageManager | AsyncDocStore,
    *paths: str | Path,
    partial: bool = False,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync the config files at ``paths`` (project files, component files or directories).

    Files are read as the framework reads them (see :func:`~docstore.agents.load_configs`):
    a name defined again keeps the first definition and is listed in ``report.warnings``.
    Unchanged entries write nothing, a changed one writes one version, all in one
    transaction. Broken entries are listed in the report with file and entry name; with
    any of them nothing is written (``report.applied`` is False) unless ``partial``, which
    syncs the rest. ``target`` may be a bare DocStore: the config kinds are registered on
    it where missing. ``progress(done, total)`` is called as configs are stored.
    """
    manager = target if isinstance(target, AsyncStorageManager) else AsyncStorageManager(target)
    return await manager.sync_path(*paths, partial=partial, progress=progress)
