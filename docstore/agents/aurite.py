"""The agent framework aurite on docstore, in one line: :func:`attach` and :func:`install`.

aurite 0.4.2 offers no injection point for its storage: its kernel builds a SQLAlchemy
``StorageManager`` itself when ``AURITE_ENABLE_DB=true``, and so does its ConfigManager in
database mode and its ``aurite export`` command. This module is therefore the one place in
docstore that reaches into the framework's internals (module globals and the engine's
private attributes); it checks the framework's version first and refuses one it was not
tested with.

- :func:`attach` puts one built ``Aurite``'s sessions on docstore; its configs stay where
  aurite found them.
- :func:`install`, called before ``Aurite()`` is built, makes every kernel of the process
  keep its sessions and its config index in docstore, with no SQLAlchemy engine or SQLite
  file made. ``docstore aurite -- aurite api`` runs the framework's own commands so.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, cast

from psycopg import sql

from docstore.errors import DocStoreError, DocumentNotFound
from docstore.store import DocStore

from ._settings import CONVERSATION, StorageConfigError, settings_from_env
from .storage import StorageManager

__all__ = [
    "TESTED_VERSIONS",
    "AuriteStorage",
    "AuriteVersionError",
    "attach",
    "install",
    "preflight",
]

log = logging.getLogger("docstore.agents.aurite")

TESTED_VERSIONS = ("0.4.2",)
"""The releases of aurite this module was tested with; :func:`attach` and :func:`install`
refuse any other, since they reach into the framework's internals."""

INSTALL_VARIABLE = "DOCSTORE_AURITE_INSTALL"
"""Set to ``1`` by ``docstore aurite``: the processes it starts call :func:`install` once
they import the framework (docstore/agents/_bootstrap/sitecustomize.py)."""


class AuriteVersionError(DocStoreError):
    """The installed aurite is not a release docstore's integration was tested with."""


def aurite_version() -> str:
    """The installed aurite's version, after checking it is one of :data:`TESTED_VERSIONS`."""
    try:
        found = metadata.version("aurite")
    except metadata.PackageNotFoundError:
        raise AuriteVersionError("aurite is not installed: pip install aurite==0.4.2") from None
    if found not in TESTED_VERSIONS:
        raise AuriteVersionError(
            f"aurite {found} is installed, but docstore.agents.aurite was tested with aurite "
            f"{', '.join(TESTED_VERSIONS)} only: it patches the framework's internals, which "
            f"change between releases. Install aurite=={TESTED_VERSIONS[-1]}, or use "
            "StorageManager with the framework's SessionManager directly"
        )
    return found


def _database_mode(environ: Mapping[str, str]) -> bool:
    """Whether aurite itself runs in database mode; refuses a spelling on which docstore
    and aurite disagree (docstore reads 1/true/yes/on, aurite only ``true``)."""
    flag = environ.get("AURITE_ENABLE_DB", "false")
    if flag.lower() == "true":
        return True
    if flag.strip().lower() in {"1", "yes", "on", "true"}:
        raise StorageConfigError(
            f"AURITE_ENABLE_DB={flag.strip()!r} switches docstore's persistence on, but aurite "
            "reads only 'true' (any case) and would keep its sessions and configs off the "
            "database: set AURITE_ENABLE_DB=true"
        )
    return False


def preflight(environ: Mapping[str, str] | None = None) -> None:
    """What ``docstore aurite`` checks before it starts anything: a tested aurite, its
    database mode on (``AURITE_ENABLE_DB=true``), and every ``AURITE_DB_*`` variable
    needed. Raises :class:`AuriteVersionError` or :class:`StorageConfigError`."""
    env = os.environ if environ is None else environ
    aurite_version()
    if not _database_mode(env):
        raise StorageConfigError(
            "AURITE_ENABLE_DB is not 'true', so aurite would not use a database: set "
            "AURITE_ENABLE_DB=true and AURITE_DB_URL (or AURITE_DB_USER and AURITE_DB_NAME)"
        )
    settings_from_env(env)


# --- one store per (DSN, schema) per process --------------------------------------------

_stores: dict[tuple[str, str, str | None], DocStore] = {}
_stores_lock = threading.Lock()


def shared_store(environ: Mapping[str, str] | None = None) -> DocStore:
    """The process's store for the ``AURITE_DB_*`` settings, made (and its tables created)
    on first use: every kernel, ConfigManager and ``refresh()`` of the process shares its
    pool."""
    env = os.environ if environ is None else environ
    settings = settings_from_env(env)
    if settings is None:
        raise StorageConfigError(
            "AURITE_ENABLE_DB is off: set AURITE_ENABLE_DB=true and AURITE_DB_URL (or "
            "AURITE_DB_USER and AURITE_DB_NAME) for aurite to keep its data in docstore"
        )
    key = (settings.dsn, settings.schema, settings.read_dsn)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = DocStore.connect(settings.dsn, schema=settings.schema, read_dsn=settings.read_dsn)
            try:
                store.init_schema()
            except BaseException:
                store.close()
                raise
            _stores[key] = store
        return store


def _close_shared_stores() -> None:
    with _stores_lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()


# --- the manager aurite's code builds --------------------------------------------------


class AuriteStorage(StorageManager):
    """docstore's StorageManager, built the way aurite's code builds its own.

    ``AuriteStorage()`` (as aurite's ConfigManager and ``aurite export`` call it) and
    ``AuriteStorage(engine=store)`` (as its kernel does) run on the process's shared store.
    :meth:`get_db_session` and :meth:`_upsert_component` are the two methods aurite's
    ConfigManager calls in database mode; a config is validated as
    :meth:`sync_index_to_db` validates it, and a changed one is a new version.
    """

    def __init__(self, engine: DocStore | None = None) -> None:
        super().__init__(engine if engine is not None else shared_store())

    @contextmanager
    def get_db_session(self) -> Iterator[FrameworkSession]:
        """One transaction, as aurite's ``get_db_session()`` gives one: everything written
        through the yielded session commits together at the end of the block, or not at all."""
        session = FrameworkSession(self)
        with self.store.transaction():
            yield session
        session.flush_times()

    def _upsert_component(self, db: Any, component_type: str, config: Mapping[str, Any]) -> None:
        """Store one config of the framework's index (``db`` is unused: docstore's own
        transaction is open when called inside :meth:`get_db_session`)."""
        self.sync_index_to_db({component_type: {str(config.get("name")): config}})

    def delete_component(self, component_name: str) -> bool:
        """Delete the configs named ``component_name``; only the one of the type aurite's
        ``ConfigManager.delete_config(type, name)`` names, when it is the caller (aurite's
        own table is keyed by name alone, docstore's by type and name)."""
        kind = _deleting_kind.get()
        if kind is None:
            return super().delete_component(component_name)
        try:
            self.store.delete(kind, component_name)
        except DocumentNotFound:
            return False
        return True


_deleting_kind: ContextVar[str | None] = ContextVar("docstore_aurite_deleting_kind", default=None)


class FrameworkSession:
    """What :meth:`AuriteStorage.get_db_session` yields: the part of a SQLAlchemy session
    that aurite's code and tests use. ``get(SessionDB, id)`` gives a session's record,
    whose ``created_at`` and ``last_updated`` may be set (aurite's own tests age a session
    so); ``get(ComponentDB, name)`` a config's."""

    def __init__(self, storage: AuriteStorage) -> None:
        self._storage = storage
        self._records: list[SessionRecord] = []

    def get(self, model: Any, key: str) -> Any:
        """The record of ``model`` (aurite's ``SessionDB`` or ``ComponentDB``) named ``key``."""
        table = getattr(model, "__tablename__", None)
        if table == "sessions":
            data = self._storage.get_session(key)
            if data is None:
                return None
            record = SessionRecord(data)
            self._records.append(record)
            return record
        if table == "components":
            for configs in self._storage.load_index_from_db().values():
                if key in configs:
                    return ComponentRecord(key, configs[key])
            return None
        raise TypeError(f"docstore's framework session has no table for {model!r}")

    def flush_times(self) -> None:
        """Write the times set on session records (after the block committed)."""
        store = self._storage.store
        for record in self._records:
            if not record.moved:
                continue
            query = sql.SQL(
                "UPDATE {}.documents SET created_at = coalesce(%s, created_at), "
                "updated_at = coalesce(%s, updated_at) WHERE kind = %s AND name = %s"
            ).format(sql.Identifier(store.schema))
            with store.pool.connection() as conn:
                conn.execute(
                    query,
                    [
                        record.moved.get("created_at"),
                        record.moved.get("last_updated"),
                        CONVERSATION,
                        record.session_id,
                    ],
                )


def _utc(moment: datetime) -> datetime:
    # The framework writes naive UTC times.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class SessionRecord:
    """A session's row as aurite's ``SessionDB`` has it; times may be set."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.__dict__["moved"] = {}
        self.__dict__["_data"] = dict(data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in ("created_at", "last_updated") or not isinstance(value, datetime):
            raise AttributeError(f"a session record's {name} cannot be set through docstore")
        self.moved[name] = _utc(value)
        self._data[name] = value


class ComponentRecord:
    """A config's row as aurite's ``ComponentDB`` has it (read only)."""

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.component_type = config.get("type")
        self.config = dict(config)


# --- attach and install ---------------------------------------------------------------


def attach(aurite: Any, storage: StorageManager | None = None) -> StorageManager:
    """Put a built ``Aurite``'s sessions on docstore; returns the storage used.

    ``storage`` defaults to :meth:`StorageManager.from_env` (the caller closes what it
    returns; the kernel's ``shutdown()`` does not). That needs ``AURITE_ENABLE_DB=true``,
    which also puts aurite's own ConfigManager in database mode on aurite's own storage:
    to keep configs in the project's files, leave it unset and pass ``storage``. Afterwards
    ``aurite.kernel.storage_manager is storage`` and the engine's own ``SessionManager``
    runs in database mode on it. Configs stay where aurite found them.
    """
    aurite_version()
    from aurite.lib.storage.sessions.session_manager import SessionManager

    if storage is None:
        if not _database_mode(os.environ):
            raise StorageConfigError(
                "AURITE_ENABLE_DB is not 'true': set it (and AURITE_DB_URL or AURITE_DB_USER "
                "and AURITE_DB_NAME), or pass attach() a StorageManager"
            )
        storage = StorageManager.from_env()
        assert storage is not None  # database mode on: from_env() builds one or raises
    storage.init_db()
    kernel = aurite.kernel
    own = getattr(kernel, "_db_engine", None)
    if own is not None and not isinstance(own, DocStore):
        own.dispose()  # aurite's own engine, built before we came: nothing uses it now
    kernel._db_engine = None
    kernel.storage_manager = storage
    engine = kernel.execution
    engine._storage_manager = storage
    if engine._cache_manager is not None:
        engine._session_manager = SessionManager(
            cache_manager=engine._cache_manager, storage_manager=cast(Any, storage)
        )
    return storage


_installed = False
_install_lock = threading.Lock()

# Where aurite binds the names it builds its storage with (`from ... import X` copies a
# module global); a module imported after install() reads the patched originals.
_STORAGE_MODULES = (
    "aurite.lib.storage.db.db_manager",
    "aurite.lib.storage",
    "aurite.lib.storage.sessions.session_manager",
    "aurite.lib.config.config_manager",
    "aurite.execution.aurite_engine",
    "aurite.aurite",
    "aurite.bin.cli.cli",
)


def _create_engine() -> DocStore | None:
    """aurite's ``create_db_engine()``, on docstore: the shared store, in database mode."""
    return shared_store() if _database_mode(os.environ) else None


def install() -> bool:
    """Make every aurite kernel this process builds keep its sessions and its config index
    in docstore; call it once, before ``Aurite()`` is built.

    Needs ``AURITE_ENABLE_DB=true`` (aurite's spelling) and the ``AURITE_DB_*``
    variables. Returns False, patching nothing, when ``AURITE_ENABLE_DB`` is off; raises
    :class:`StorageConfigError` for a spelling aurite does not read, and
    :class:`AuriteVersionError` for an aurite release it was not tested with. Runtime
    registrations (``Aurite.register_agent`` and the like) are stored too, as versions.
    """
    global _installed
    aurite_version()
    if not _database_mode(os.environ):
        log.info("AURITE_ENABLE_DB is off: aurite keeps its files, docstore is not installed")
        return False
    settings_from_env()  # a missing variable is named now, not at the first kernel
    with _install_lock:
        if _installed:
            return True
        db_manager = importlib.import_module("aurite.lib.storage.db.db_manager")
        db_connection = importlib.import_module("aurite.lib.storage.db.db_connection")
        config_manager = importlib.import_module("aurite.lib.config.config_manager")
        theirs: dict[Any, Any] = {
            db_manager.StorageManager: AuriteStorage,
            db_connection.create_db_engine: _create_engine,
        }
        setattr(db_connection, "create_db_engine", _create_engine)  # noqa: B010
        for name in _STORAGE_MODULES:
            module = sys.modules.get(name)
            for attr, value in list(vars(module).items()) if module is not None else ():
                for original, ours in theirs.items():
                    if value is original:
                        setattr(module, attr, ours)
        _persist_registrations(config_manager.ConfigManager)
        _delete_one_type(config_manager.ConfigManager)
        _installed = True
    return True


def _persist_registrations(config_manager: type) -> None:
    """aurite keeps a component registered at run time in memory only; store it too,
    validated, before the index takes it (a refused one is in neither)."""
    original = getattr(config_manager, "register_component_in_memory")  # noqa: B009

    def register_component_in_memory(self: Any, component_type: str, config: dict[str, Any]) -> None:
        storage = getattr(self, "_storage_manager", None)
        if isinstance(storage, StorageManager) and config.get("name"):
            stored = {**config, "_source_file": "in-memory", "_context_level": "programmatic"}
            storage.sync_index_to_db({component_type: {str(config["name"]): stored}})
        original(self, component_type, config)

    register_component_in_memory.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(config_manager, "register_component_in_memory", register_component_in_memory)  # noqa: B010


def _delete_one_type(config_manager: type) -> None:
    """aurite's ConfigManager deletes a config by name in database mode (its table has no
    type in its key): tell docstore's storage which type the call is for."""
    original = getattr(config_manager, "delete_config")  # noqa: B009

    def delete_config(self: Any, component_type: str, component_name: str) -> bool:
        token = _deleting_kind.set(component_type)
        try:
            return bool(original(self, component_type, component_name))
        finally:
            _deleting_kind.reset(token)

    delete_config.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(config_manager, "delete_config", delete_config)  # noqa: B010
