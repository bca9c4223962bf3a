# Generated from docstore/aio.py by .ci/async_to_sync.py: do not edit.
# Change docstore/aio.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""DocStore: the synchronous store, a thin shell that runs the shared plans of ``_core``.

docstore/store.py is generated from docstore/aio.py by .ci/async_to_sync.py (``async`` and
``await`` taken out, the asyncio names replaced by their synchronous ones): edit aio.py.
"""

from __future__ import annotations

import builtins
import inspect
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from functools import partial
from itertools import chain
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import psycopg
from psycopg import errors as pge
from psycopg_pool import ConnectionPool
from pydantic import TypeAdapter

from . import _connect, _otel, _replica
from ._base import IndexOn, over_a_limit
from ._core import Core, OnInvalid, Op, Program, Rows, Stmt, T
from ._ddl import Migration
from ._feed import Feed, channel
from ._handles import Documents, Log
from ._spare import SparePool
from ._sql import DURABLE_AGAIN, check_schema
from .change import Change
from .doc import Doc, Entry, Imported, Items, LogHead
from .errors import DocStoreError, KindMismatch, VersionConflict
from .kinds import Kind, KindRef, LogKind, Register, Registry

__all__ = ["DocStore"]

M = TypeVar("M")

# (pool, connection) of the transaction open in this context, if any.
_ACTIVE: ContextVar[_connect.Held | None] = ContextVar("docstore_transaction", default=None)

# The schemas each pool has found at this release's DDL version: a store checks the
# recorded version before its first write, once per pool, not once per call (docstore._ddl).
_LAYOUT_OK: weakref.WeakKeyDictionary[ConnectionPool[Any], set[str]] = weakref.WeakKeyDictionary()


def _check(conn: psycopg.Connection[Any]) -> None:
    if _connect.idle_connection_is_dead(conn):
        # Close it first: the pool only discards a failed connection that is closed, and
        # would otherwise hand the same dead one back until its timeout.
        conn.close()
        raise psycopg.OperationalError("connection closed by the server while idle")


class DocStore:
    """Versioned, validated documents and logs in PostgreSQL (synchronous API).

    Build one with :meth:`connect`, or around a ``psycopg_pool.ConnectionPool`` you own.
    """

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        schema: str = "docstore",
        kinds: Registry | None = None,
        author: str | None = None,
        owns_pool: bool = False,
        read_pool: ConnectionPool[Any] | None = None,
    ) -> None:
        self._pool = pool
        self._owns_pool = owns_pool
        self.kinds = kinds if kinds is not None else Registry()
        self._core = Core(self.kinds, schema, author)
        self._layout_ok = schema in _LAYOUT_OK.get(pool, ())
        self._where = _connect.describe_dsn(str(pool.conninfo))
        self._telemetry = _otel.StoreTelemetry(str(pool.conninfo), schema)
        self._read_pool = read_pool
        self._reads = (
            None
            if read_pool is None
            else _replica.ReadRouting(
                str(read_pool.conninfo),
                _connect.describe_dsn(str(read_pool.conninfo)),
                min(1.0, float(read_pool.timeout)),
            )
        )

    @classmethod
    def connect(
        cls,
        dsn: str | None = None,
        *,
        schema: str | None = None,
        kinds: Registry | None = None,
        author: str | None = None,
        prepare_threshold: int | None = 5,
        statement_timeout: float | None = None,
        read_dsn: str | None = None,
        **pool_options: Any,
    ) -> Self:
        """Open a pool on ``dsn`` (else ``DOCSTORE_URL``, else libpq's PG* variables), for
        the store in ``schema`` (else ``DOCSTORE_SCHEMA``, else ``docstore``).

        ``prepare_threshold=None`` turns prepared statements off (pgbouncer in
        transaction mode); ``statement_timeout`` (seconds) makes the server cancel any
        statement running longer, raising DatabaseUnavailable; ``read_dsn`` opens a second
        pool on a read replica for reads (docs/scaling.md); ``pool_options`` go to
        ``psycopg_pool.ConnectionPool`` (both pools).
        """
        schema = _connect.resolve_schema(schema)
        check_schema(schema)  # before a pool is made: a refused name must leave nothing open
        settings = _connect.pool_settings(dsn, prepare_threshold, statement_timeout, pool_options)
        # Checked before the primary's pool opens: a read_dsn that cannot be parsed must
        # leave nothing open behind its error.
        reads = None
        if read_dsn is not None:
            reads = _connect.pool_settings(
                read_dsn, prepare_threshold, statement_timeout, pool_options, "read_dsn"
            )
        try:
            # One direct attempt first: a refused connection or a wrong password fails here
            # at once with libpq's reason, where the pool would retry until its timeout.
            probe = psycopg.Connection.connect(settings.conninfo, **settings.probe_kwargs)
        except psycopg.Error as exc:
            raise _connect.connect_failure(settings.conninfo, exc) from None
        probe.close()
        pool: ConnectionPool[Any] = _pool_class(settings.options)(
            settings.conninfo,
            kwargs=settings.kwargs,
            open=False,
            check=_check,
            name=settings.name,
            **settings.options,
        )
        try:
            pool.open(wait=True, timeout=settings.options["timeout"])
        except psycopg.Error as exc:
            pool.close()
            raise _connect.connect_failure(settings.conninfo, exc) from None
        if reads is None:
            return cls(pool, schema=schema, kinds=kinds, author=author, owns_pool=True)
        # Not waited for: a replica that is down must not stop the store from working.
        read_pool: ConnectionPool[Any] = _pool_class(reads.options)(
            reads.conninfo,
            kwargs=reads.kwargs,
            open=False,
            check=_check,
            name=reads.name + ":reads",
            **reads.options,
        )
        read_pool.open(wait=False)
        return cls(pool, schema=schema, kinds=kinds, author=author, owns_pool=True, read_pool=read_pool)

    def close(self) -> None:
        """Close the pools, if this store opened them."""
        if self._owns_pool:
            self._pool.close()
            if self._read_pool is not None:
                self._read_pool.close()

    def dispose(self) -> None:
        """Let go of every pooled connection, as SQLAlchemy's ``Engine.dispose()`` does.

        Idle connections close now and those in use when they come back; none opened
        before is used again. The store stays open: the pool opens fresh connections in
        their place (psycopg_pool's ``drain()``). It works on a pool the store was given
        too (the framework calls it at shutdown on whatever it holds as its engine).
        """
        self._pool.drain()
        if self._read_pool is not None:
            self._read_pool.drain()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        reads = "" if self._reads is None else f" reads={self._reads.where!r}"
        return f"<DocStore schema={self.schema!r} db={self._where!r}{reads} kinds={len(self.kinds)}>"

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's tables."""
        return self._core.sql.schema

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The connection pool (for raw SQL beside the store)."""
        return self._pool

    @property
    def read_pool(self) -> ConnectionPool[Any] | None:
        """The read replica's pool, when ``read_dsn`` was given."""
        return self._read_pool

    # --- running plans -------------------------------------------------------------------

    def _run(self, make: Callable[[], Op[T]], what: str, op: Op[T] | None = None) -> T:
        """Run the op ``make()`` builds (its checks and encoding included), for the store
        method ``what``: its name in spans and metrics. ``op``: made already (observed)."""
        if op is None:
            if _otel.active():
                return self._observed(make, what)
            op = make()
        if not (op.read_only or not op.layout or self._layout_ok):
            # The first write of this pool checks the store's DDL version before it writes.
            result = self._attempts(self._core.layout_checked(op), what)
            self._layout_found()
            return result
        if _ACTIVE.get() is not None or (op.read_only and self._reads is not None):
            return self._attempts(op, what)
        # The common call (no transaction block, no replica to route a read to) pays for
        # one pooled attempt only; a failure goes to the retry loop, which decides it.
        try:
            conn = self._pool.getconn()
        except psycopg.Error as exc:
            return self._attempts(op, what, exc, False)
        try:
            return self._on_pool(conn, op)
        except psycopg.Error as exc:
            return self._attempts(op, what, exc, True)

    def _layout_found(self) -> None:
        self._layout_ok = True
        _LAYOUT_OK.setdefault(self._pool, set()).add(self.schema)

    def _attempts(self, op: Op[T], what: str, failed: psycopg.Error | None = None, sent: bool = False) -> T:
        """Run ``op`` until it succeeds or fails for good: in the caller's transaction,
        on the replica, or on the pool. ``failed``: the error of a first attempt made
        already on the pool (``sent``: it had a connection)."""
        held = self._held(op)
        attempt = 0
        if failed is not None:
            attempt = 1
            self._failed(failed, op, what, attempt, False, sent)
        elif op.read_only and not op.on_primary and held is None and self._reads is not None:
            if self._reads.usable():
                try:
                    return self._run_on_replica(op)
                except _replica.UsePrimary as why:
                    self._telemetry.fell_back(what, op.kind, why.reason)
            else:
                self._telemetry.fell_back(what, op.kind, self._reads.unusable())
        while True:
            attempt += 1
            sent = held is not None  # False until a connection is ours: nothing reached the server
            try:
                if held is None:
                    # getconn/putconn rather than pool.connection(): its `with conn` would
                    # run a commit (a no-op here, but not free) on every call.
                    conn = self._pool.getconn()
                    sent = True
                    return self._on_pool(conn, op)
                return self._in_transaction(held, op)
            except psycopg.Error as exc:
                self._failed(exc, op, what, attempt, held is not None, sent)

    def _in_transaction(self, held: psycopg.Connection[Any], op: Op[T]) -> T:
        """Run ``op`` in the caller's transaction block."""
        if op.atomic:
            # A savepoint: a failure part-way (a later chunk that does not
            # validate) must take back what the op already wrote, even when
            # the caller catches it and the block goes on to commit.
            with held.transaction():
                result = self._drive(held, op)
        else:
            result = self._drive(held, op)
        if not op.read_only and self._core.lazy(op.kind):
            # Its statement turned synchronous_commit off to the end of the transaction:
            # the block's commit stays as durable as its other writes need.
            _connect.new_cursor(held).execute(DURABLE_AGAIN)
        return result

    def _held(self, op: Op[Any]) -> psycopg.Connection[Any] | None:
        """The connection of the caller's open transaction block, if any."""
        active = _ACTIVE.get()
        if active is None or active.pool is not self._pool:
            return None
        if active.open:
            conn: psycopg.Connection[Any] = active.conn
            return conn
        if not op.read_only:
            raise active.ended(op.kind, op.name)
        return None

    def _failed(
        self, exc: psycopg.Error, op: Op[Any], what: str, attempt: int, in_transaction: bool, sent: bool
    ) -> None:
        """Raise the error a failed attempt ends in, or return to run the op again: the
        one place where failures are decided (docstore._base.CoreBase.failure)."""
        if self._reads is not None and not op.read_only:
            # It may have committed: reads stay on the primary until it is covered.
            self._reads.wrote_unknown()
        error = self._core.failure(exc, op, attempt, in_transaction, sent)
        if error is not None:
            raise error from exc
        self._telemetry.retried(what, op.kind, exc)

    def _on_pool(self, conn: psycopg.Connection[Any], op: Op[T]) -> T:
        """Run ``op`` on ``conn``, fresh from the pool, and give it back."""
        try:
            if op.atomic or not conn.autocommit:
                with conn.transaction():
                    result = self._drive(conn, op, True)
            else:
                result = self._drive(conn, op, True)
            if self._reads is not None and (not op.read_only or self._reads.unknown):
                self._note_write(conn)
            return result
        except VersionConflict:
            # Another writer got there first: the replica may not show its write
            # yet, so this store's next reads must not be older than now.
            if self._reads is not None:
                self._note_write(conn)
            raise
        finally:
            self._pool.putconn(conn)

    def _observed(self, make: Callable[[], Op[T]], what: str) -> T:
        """:meth:`_run` in a span, timed (an SDK is configured)."""
        with self._telemetry.call(what) as call:
            op = make()
            call.describe(op.kind, op.name)
            result = self._run(make, what, op)
            call.done(result)
            return result

    def _steps(self, program: Program[T]) -> T:
        """Run a program of operations (docstore._ddl), each on the pool, or on one
        connection of the program's own where the op says so; an op's error is thrown
        into the program, which may answer it."""
        own: psycopg.Connection[Any] | None = None
        try:
            op = next(program)
            while True:
                try:
                    if not op.own_connection:
                        # Made already: run as it is, no span of its own per upgrade statement.
                        result = self._run(_made(op), "migrate", op)
                    else:
                        if own is None:
                            own = self._own_connection()
                        if op.atomic:
                            with own.transaction():
                                result = self._drive(own, op)
                        else:
                            result = self._drive(own, op)
                except (psycopg.Error, DocStoreError) as exc:
                    op = program.throw(exc)
                    continue
                op = program.send(result)
        except StopIteration as stop:
            done: T = stop.value
            return done
        except psycopg.Error as exc:
            raise self._core.translate(exc) from exc
        finally:
            if own is not None:
                own.close()

    def _own_connection(self) -> psycopg.Connection[Any]:
        """A connection for an upgrade's steps, as the pool makes them, never prepared."""
        active = _ACTIVE.get()
        if active is not None and active.pool is self._pool and active.open:
            # Its index builds would wait for this very transaction to end.
            raise DocStoreError(
                f"schema {self.schema!r}: the store's layout cannot be upgraded inside "
                "store.transaction(); run init_schema() or migrate() outside the block"
            )
        conninfo = str(self._pool.conninfo)
        given: Any = self._pool.kwargs or {}
        if callable(given):  # psycopg_pool 3.3 takes a function giving them too
            given = given()
            if inspect.isawaitable(given):
                given = given
        kwargs = {**given, "autocommit": True, "prepare_threshold": None}
        try:
            return psycopg.Connection.connect(conninfo, **kwargs)
        except psycopg.Error as exc:
            raise _connect.connect_failure(conninfo, exc) from None

    def _note_write(self, conn: psycopg.Connection[Any]) -> None:
        # After the commit: the replica holds this write once it has replayed this far.
        assert self._reads is not None
        since = self._reads.writing()
        try:
            cur = _connect.new_cursor(conn)
            cur.execute(_replica.WRITE_LSN)
            row = cur.fetchone()
        except psycopg.Error:
            # The write is committed: failing it now would misreport it.
            self._reads.wrote_unknown()
            return
        self._reads.wrote(row[0] if row is not None else None, since)

    def _run_on_replica(self, op: Op[T]) -> T:
        """Run a read on the replica; UsePrimary when it is down or behind our writes."""
        assert self._read_pool is not None and self._reads is not None
        try:
            conn = self._read_pool.getconn(timeout=self._reads.timeout)
        except psycopg.Error as exc:
            self._reads.failed(exc)
            raise _replica.UsePrimary("unavailable") from None
        try:
            server = _replica.server_of(conn)
            if not self._reads.caught_up(server):
                cur = _connect.new_cursor(conn)
                cur.execute(_replica.REPLAY_LSN)
                row = cur.fetchone()
                if not self._reads.replayed(server, row[0] if row is not None else None):
                    raise _replica.UsePrimary("behind")
            result = self._drive(conn, op, own=True)
            self._reads.answered()
            self._telemetry.on_replica(server)
            return result
        except (pge.UndefinedTable, pge.InvalidSchemaName, pge.UndefinedObject):
            # A standby that has not replayed the schema's creation yet: the primary has
            # it (or says SchemaMissing itself).
            raise _replica.UsePrimary("no_schema") from None
        except (pge.SerializationFailure, pge.QueryCanceled) as exc:
            if isinstance(exc, pge.QueryCanceled) and "recovery" not in str(exc):
                raise self._core.translate(exc, op) from exc
            # Cancelled by a conflict with replay: the primary has no such conflicts.
            raise _replica.UsePrimary("replay_conflict") from None
        except psycopg.OperationalError as exc:
            if over_a_limit(exc):  # the statement's fault, not the replica's
                raise self._core.translate(exc, op) from exc
            self._reads.failed(exc)
            raise _replica.UsePrimary("unavailable") from None
        except psycopg.Error as exc:
            raise self._core.translate(exc, op) from exc
        finally:
            self._read_pool.putconn(conn)

    def _drive(self, conn: psycopg.Connection[Any], op: Op[T], own: bool = False) -> T:
        """Run ``op``'s plan on ``conn``. ``own``: the connection is this call's alone (out of
        the pool for it), so its statements may share the connection's cursor; a
        transaction's connection can serve several tasks at once, each needing a cursor
        of its own."""
        plan = op.plan()
        try:
            stmt = next(plan)
            while True:
                if stmt.more is not None:
                    rows = self._pipeline(conn, stmt)
                else:
                    cur = _connect.cursor(conn) if own else _connect.new_cursor(conn)
                    cur.execute(stmt.query, stmt.params)
                    rows = cur.fetchall() if _connect.has_rows(cur) else []
                    if own and not _connect.keeps_cursor(rows, stmt.sends, stmt.texts):
                        _connect.forget_cursor(conn)
                stmt = plan.send(rows)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _pipeline(self, conn: psycopg.Connection[Any], first: Stmt) -> Rows:
        cursors = []
        with conn.pipeline():
            for stmt in chain((first,), first.more or ()):
                cur = _connect.new_cursor(conn)
                cur.execute(stmt.query, stmt.params)
                cursors.append(cur)
        rows: Rows = []
        for cur in cursors:
            if _connect.has_rows(cur):
                rows.extend(cur.fetchall())
        return rows

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """Run the writes inside the block in one transaction: all commit, or none.

        Nested blocks become savepoints. The block gets the transaction's connection, for
        statements of the caller's own that must commit or roll back with docstore's
        writes (a table of its own beside the store's); don't commit, close or leave the
        connection to another task.
        """
        with self._telemetry.transaction() if _otel.active() else _otel.OFF:
            active = _ACTIVE.get()
            if active is not None and active.pool is self._pool and active.open:
                with active.conn.transaction():
                    yield active.conn
                return
            committing = False
            try:
                with self._pool.connection() as conn:
                    with conn.transaction():
                        held = _connect.Held(self._pool, conn)
                        token = _ACTIVE.set(held)
                        try:
                            yield conn
                            committing = True
                        except BaseException:
                            # A conflict or a failure inside the block: another writer may
                            # have moved a document on, so reads must not be older than now.
                            if self._reads is not None:
                                self._reads.wrote_unknown()
                            raise
                        finally:
                            held.open = False
                            _ACTIVE.reset(token)
                    if self._reads is not None:
                        self._note_write(conn)
            except psycopg.Error as exc:
                # A commit whose reply was lost may have happened.
                if self._reads is not None:
                    self._reads.wrote_unknown()
                raise self._core.translate(exc, unknown=committing and exc.sqlstate is None) from exc

    # --- set-up ------------------------------------------------------------------------

    def init_schema(self, *, partitions: int | None = None) -> int:
        """Create the store if missing, or upgrade one made by an earlier release to this
        release's layout (online, docs/upgrading.md); returns the DDL version.

        Idempotent, never drops anything, and safe when many processes run it at once; on
        a store already at this release's version it changes nothing. ``partitions=N``
        creates the ``versions`` table hash-partitioned on (kind, name) into N partitions
        (docs/scaling.md); it cannot change an existing table's layout.
        """
        version = self._steps(self._core.init_schema(partitions))
        self._layout_found()
        return version

    def migrate(
        self,
        *,
        dry_run: bool = False,
        offline_ok: bool = False,
        progress: Callable[[str], None] | None = None,
        partitions: int | None = None,
    ) -> Migration:
        """Upgrade the store's layout to this release's DDL version, in place, each step
        online and recorded as it commits (docs/upgrading.md); returns what it found and ran.

        ``dry_run``: report the steps, change nothing. ``offline_ok``: also run steps that
        stop writes while they run (none so far); without it they raise, naming them.
        ``progress(line)`` is told each step as it starts. ``partitions=N`` then moves a
        plain ``versions`` into N hash partitions, online (writes go on meanwhile).
        """
        migration = self._steps(self._core.migrate(dry_run, offline_ok, progress, partitions))
        if not dry_run:
            self._layout_found()
        return migration

    def create_index(self, kind: KindRef, *, on: IndexOn = "data") -> str:
        """Index ``kind``'s current documents; returns the index's name. Idempotent.

        ``on="data"``: a GIN index for ``where=`` filters (containment, JSONPath).
        ``on="updated_at"``: for ``order_by="updated_at"``. None exists by default, since
        each is paid by every write of the kind (docs/performance.md, Indexes).
        """
        return self._run(lambda: self._core.create_index(self.kinds.name(kind), on), "create_index")

    @property
    def register(self) -> Register:
        """Register ``kind`` with any type Pydantic's TypeAdapter takes: the store's
        :meth:`Registry.register <docstore.Registry.register>`.

        ``upgraders[n]`` turns a document stored at schema version n (as a dict) into its
        shape at n + 1; they run on read. ``mode="log"`` makes a log kind, whose head
        holds metadata of type ``meta``. ``notify``: its writes wake change feeds at once
        (default: snapshot kinds do, log kinds are seen at the feed's next poll).
        Returns the kind's typed handle: open it with :meth:`documents` or :meth:`log`.
        """
        return self.kinds.register

    @overload
    def documents(self, kind: Kind[T]) -> Documents[T]: ...

    @overload
    def documents(self, kind: str) -> Documents[Any]: ...

    def documents(self, kind: Kind[Any] | str) -> Documents[Any]:
        """The documents of the snapshot kind ``kind``, typed by its handle
        (``Kind[T]`` gives ``Documents[T]``); a log kind raises KindMismatch."""
        spec = self.kinds.get(kind)  # a handle must be the one registered under its name
        if spec.mode != "snapshot":
            raise KindMismatch(f"kind {spec.name!r} is a log kind: open it with store.log({spec.name!r})")
        return Documents(self, kind)

    @overload
    def log(self, kind: LogKind[T, M]) -> Log[T, M]: ...

    @overload
    def log(self, kind: str) -> Log[Any, Any]: ...

    def log(self, kind: LogKind[Any, Any] | str) -> Log[Any, Any]:
        """The logs of the log kind ``kind``, typed by its handle (``LogKind[T, M]``
        gives ``Log[T, M]``); a snapshot kind raises KindMismatch."""
        spec = self.kinds.get(kind)
        if spec.mode != "log":
            raise KindMismatch(
                f"kind {spec.name!r} is a snapshot kind: open it with store.documents({spec.name!r})"
            )
        return Log(self, kind)

    # --- snapshot kinds ----------------------------------------------------------------

    def put(
        self,
        kind: KindRef,
        name: str,
        value: Any,
        *,
        expected_version: int | None = None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> Doc[Any]:
        """Validate and store ``value`` as the next version; an unchanged value writes nothing.

        ``expected_version``: None any, 0 must not exist, N must be at version N.
        ``idempotency_key``: a retry with the same key returns what the first attempt
        wrote and writes nothing more (docs/reliability.md).
        """
        # Arguments by position here and in append: keywords cost every call more.
        return self._run(
            lambda: self._core.put(
                self.kinds.name(kind), name, value, expected_version, "put", author, idempotency_key
            ),
            "put",
        )

    def get(self, kind: KindRef, name: str, *, version: int | None = None) -> Doc[Any]:
        """The current document, or version ``version`` of it; else DocumentNotFound."""
        return self._run(lambda: self._core.get(self.kinds.name(kind), name, version), "get")

    def get_many(self, kind: KindRef, names: Sequence[str]) -> dict[str, Doc[Any]]:
        """Current documents by name, in one query; missing names are left out."""
        return self._run(lambda: self._core.get_many(self.kinds.name(kind), names), "get_many")

    def versions(self, kind: KindRef, name: str) -> builtins.list[Doc[Any]]:
        """Every stored version, oldest first, tombstones included."""
        return self._run(lambda: self._core.versions(self.kinds.name(kind), name), "versions")

    def delete(
        self,
        kind: KindRef,
        name: str,
        *,
        expected_version: int | None = None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Delete the document (a tombstone version); returns the tombstone's version."""
        return self._run(
            lambda: self._core.delete(self.kinds.name(kind), name, expected_version, author, idempotency_key),
            "delete",
        )

    def restore(
        self, kind: KindRef, name: str, *, expected_version: int | None = None, author: str | None = None
    ) -> int:
        """Undo a delete; returns the document's version after it.

        A snapshot's deleted value comes back as a new version; a log's items live at the
        delete are live again (no version is written). A live document is left as it is;
        one purged or pruned raises DocumentNotFound: only those remove a document for good.
        """
        return self._run(
            lambda: self._core.restore(self.kinds.name(kind), name, expected_version, author), "restore"
        )

    def revert(
        self,
        kind: KindRef,
        name: str,
        to_version: int,
        *,
        expected_version: int | None = None,
        author: str | None = None,
    ) -> Doc[Any]:
        """Write the value of ``to_version`` as a new version."""
        return self._run(
            lambda: self._core.revert(self.kinds.name(kind), name, to_version, expected_version, author),
            "revert",
        )

    def list(
        self,
        kind: KindRef,
        *,
        where: Any = None,
        limit: int | None = None,
        after: str | Doc[Any] | LogHead[Any] | tuple[Any, str] | None = None,
        on_invalid: OnInvalid = "raise",
        order_by: str = "name",
    ) -> builtins.list[Doc[Any]]:
        """Current, undeleted documents matching ``where``, in ``order_by`` order.

        ``order_by``: ``name`` (default), ``updated_at``, ``created_at``, ``version`` or
        ``data.<path>``, ``-`` first for descending. ``after`` pages by keyset: the last
        name (name order), or the previous page's last Doc or ``(sort key, name)``.
        """
        return self._run(
            lambda: self._core.list_docs(self.kinds.name(kind), where, limit, after, on_invalid, order_by),
            "list",
        )

    def count(self, kind: KindRef, *, where: Any = None) -> int:
        """How many current, undeleted documents of ``kind`` match ``where``."""
        return self._run(lambda: self._core.count(self.kinds.name(kind), where), "count")

    def iter(
        self,
        kind: KindRef,
        *,
        where: Any = None,
        batch_size: int = 1000,
        on_invalid: OnInvalid = "raise",
        order_by: str = "name",
    ) -> Iterator[Doc[Any]]:
        """Stream current documents in ``order_by`` order (see :meth:`list`), ``batch_size``
        rows in memory at most. An order no index holds (``created_at``, ``version``,
        ``data.<path>``) reads the names in that order once, then the documents by name."""
        spec = self.kinds.get(kind)
        state: Any = None
        while True:
            rows, state = self._run(
                partial(self._core.iter_step, spec.name, where, state, batch_size, order_by), "iter"
            )
            for doc in self._core.docs_from_rows(spec, rows, on_invalid):
                yield doc
            if state is None:
                return

    def put_many(
        self, kind: KindRef, values: Mapping[str, Any], *, author: str | None = None
    ) -> builtins.list[Doc[Any]]:
        """Store many documents atomically in one round trip; returns them in input order."""
        return self._run(lambda: self._core.put_many(self.kinds.name(kind), values, author), "put_many")

    def upgrade(
        self, kind: KindRef, *, batch_size: int = 500, progress: Callable[[int], None] | None = None
    ) -> int:
        """Rewrite documents of an older schema_version as new versions; returns how many."""
        return self._run(lambda: self._core.upgrade(self.kinds.name(kind), batch_size, progress), "upgrade")

    # --- log kinds ---------------------------------------------------------------------

    def append(
        self,
        kind: KindRef,
        name: str,
        items: Iterable[Any],
        *,
        expected_version: int | None = None,
        expected_count: int | None = None,
        meta: Any = None,
        meta_update: Mapping[str, Any] | None = None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Append items to a log in one statement; returns the log's new version.

        ``expected_version`` makes it a compare-and-swap; ``expected_count`` (with it)
        also requires that many live items, which catches a ``clear`` or ``delete`` since.
        ``meta`` replaces the log's metadata; ``meta_update`` sets only the keys it has.
        ``idempotency_key``: a retry with the same key returns the first attempt's version.
        """
        return self._run(
            lambda: self._core.append(
                self.kinds.name(kind),
                name,
                items,
                expected_version,
                meta,
                False,
                author,
                expected_count,
                meta_update,
                idempotency_key,
            ),
            "append",
        )

    def rewrite(
        self,
        kind: KindRef,
        name: str,
        items: Iterable[Any],
        *,
        expected_version: int | None = None,
        expected_count: int | None = None,
        meta: Any = None,
        meta_update: Mapping[str, Any] | None = None,
        author: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Replace the live items; the old ones stay readable by version until pruned."""
        return self._run(
            lambda: self._core.append(
                self.kinds.name(kind),
                name,
                items,
                expected_version,
                meta,
                rewrite=True,
                author=author,
                expected_count=expected_count,
                meta_update=meta_update,
                idempotency_key=idempotency_key,
            ),
            "rewrite",
        )

    def clear(self, kind: KindRef, name: str, *, expected_version: int | None = None) -> int:
        """Leave the log with no live items; returns its version."""
        return self._run(lambda: self._core.clear(self.kinds.name(kind), name, expected_version), "clear")

    def read(
        self,
        kind: KindRef,
        name: str,
        *,
        last: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        where: Any = None,
        into: TypeAdapter[Any] | None = None,
        written_at: bool = False,
    ) -> Items[Any]:
        """Live items, oldest first: the ``last`` N, or ``limit`` of those after ``after``.

        The :class:`Items` list knows each item's version; ``written_at=True`` fetches
        write times too (``items.written_at``, ``items.entries()``).
        ``into``: validate each item's stored JSON with this adapter instead of the kind's
        (after the kind's upgraders, for an item of an older ``schema_version``), to get
        another type straight from it, such as plain dicts; invalid items raise
        DocumentInvalid with its errors.
        """
        return self._run(
            lambda: self._core.read(self.kinds.name(kind), name, last, after, limit, where, into, written_at),
            "read",
        )

    def entries(
        self,
        kind: KindRef,
        name: str,
        *,
        last: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        where: Any = None,
    ) -> builtins.list[Entry[Any]]:
        """Deprecated: ``(await read(..., written_at=True)).entries()``."""
        warnings.warn(
            "entries() is deprecated: use read(..., written_at=True).entries()", DeprecationWarning, 2
        )
        items = self.read(kind, name, last=last, after=after, limit=limit, where=where, written_at=True)
        return items.entries()

    # --- retention ---------------------------------------------------------------------

    def prune_documents(
        self,
        kind: KindRef,
        *,
        older_than: timedelta | datetime | None = None,
        keep_last: int | None = None,
        batch_size: int = 500,
        progress: Callable[[int], None] | None = None,
        restorable: bool = False,
    ) -> int:
        """Delete whole documents last written before ``older_than`` and/or beyond the
        ``keep_last`` most recent; returns how many went. ``progress(n)`` after each batch.

        ``restorable=True`` (log kinds): delete them as :meth:`delete` does, a tombstone
        :meth:`restore` undoes, instead of removing them; ``keep_last`` counts live logs.
        """
        return self._run(
            lambda: self._core.prune(
                self.kinds.name(kind), older_than, keep_last, batch_size, progress, restorable
            ),
            "prune_documents",
        )

    def purge(self, kind: KindRef, names: str | Sequence[str]) -> builtins.list[str]:
        """Delete the named documents and every version of them, for good, in one
        statement; returns the names that were live (neither missing nor deleted), which
        the caller could not know without it. The change feed reports each document
        removed as a ``purge``."""
        return self._run(lambda: self._core.purge(self.kinds.name(kind), names), "purge")

    def prune_versions(
        self,
        kind: KindRef,
        *,
        keep_last: int,
        batch_size: int = 5000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Drop versions beyond each document's newest ``keep_last``; returns how many.
        ``progress(n)`` after each batch."""
        return self._run(
            lambda: self._core.prune_versions(self.kinds.name(kind), keep_last, batch_size, progress),
            "prune_versions",
        )

    def prune_changes(self, *, older_than: timedelta | datetime, batch_size: int = 5000) -> int:
        """Delete the change feed's rows written before ``older_than``, ``batch_size`` per
        transaction; returns how many. A feed whose cursor is older then raises
        ChangesPruned rather than skip them.
        """
        return self._run(lambda: self._core.prune_changes(older_than, batch_size), "prune_changes")

    # --- the change feed ---------------------------------------------------------------

    def changes(
        self,
        kinds: Sequence[KindRef] | None = None,
        *,
        after: str | None = None,
        listen_dsn: str | None = None,
        poll_interval: float = 1.0,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[Change]:
        """Every committed write (of ``kinds``, else all) as a Change, in order, for ever.

        ``after=None`` starts with the writes committed from now on; ``after=<cursor>``
        first delivers every change after that one. Nothing is missed or repeated across
        a lost connection. LISTEN wakes it; ``poll_interval`` is how long it waits without
        a notification. ``listen_dsn``: a direct connection for LISTEN (the pool's are
        behind pgbouncer in transaction mode). Leaving the loop returns the connection;
        so does ``stop()`` turning true (checked each time the feed wakes).

        A cursor the feed did not give raises InvalidCursor; one ahead of this server
        (from another cluster) CursorAheadOfServer; one behind retention ChangesPruned.
        """
        if listen_dsn is not None:
            # libpq's parse error would quote the password, and reach the caller.
            _connect.check_dsn(listen_dsn, "listen_dsn")
        feed = Feed(None if kinds is None else [self.kinds.name(k) for k in kinds], after, poll_interval)
        conn: psycopg.Connection[Any] | None = None
        autocommit = True  # the pool's connection's setting, given back with it
        try:
            while True:
                try:
                    if conn is None:
                        conn, autocommit = self._listen(listen_dsn)
                    found = self._drive(conn, Op(partial(feed.poll, self._core.sql)))
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    self._unlisten(conn, listen_dsn, autocommit)
                    conn = None
                    feed.lost(_connect.redact(str(exc), listen_dsn or ""))
                    continue
                except psycopg.Error as exc:
                    raise self._core.translate(exc) from exc
                if found:
                    self._telemetry.delivered(found)
                for change in found:
                    yield change
                if stop is not None and stop():
                    return
                if feed.more:
                    continue
                try:
                    for _note in conn.notifies(timeout=feed.wait(), stop_after=1):
                        pass
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    self._unlisten(conn, listen_dsn, autocommit)
                    conn = None
                    feed.lost(_connect.redact(str(exc), listen_dsn or ""))
        finally:
            self._unlisten(conn, listen_dsn, autocommit)

    def change_cursor(self) -> str:
        """A cursor for ``changes(after=...)`` that delivers exactly the writes committed
        after this call: take it, then load."""
        return self._run(
            lambda: Op(partial(Feed.frontier, self._core.sql), read_only=True, on_primary=True),
            "change_cursor",
        )

    def _listen(self, dsn: str | None) -> tuple[psycopg.Connection[Any], bool]:
        """A connection listening to this schema's feed: the pool's, or one on ``dsn``;
        and whether it was in autocommit (the feed needs it: a transaction would hold its
        snapshot, and LISTEN would wait for a commit)."""
        conn = (
            self._pool.getconn()
            if dsn is None
            else psycopg.Connection.connect(dsn, autocommit=True, connect_timeout=10)
        )
        autocommit = conn.autocommit
        try:
            if not autocommit:
                conn.set_autocommit(True)
            conn.execute(f'LISTEN "{channel(self.schema)}"')
        except BaseException:
            self._unlisten(conn, dsn, autocommit)
            raise
        return conn, autocommit

    def _unlisten(self, conn: psycopg.Connection[Any] | None, dsn: str | None, autocommit: bool) -> None:
        """Stop listening and give the connection back as it came (or close the feed's own)."""
        if conn is None:
            return
        try:
            if dsn is None and not conn.closed and not conn.broken:
                conn.execute("UNLISTEN *")
                if not autocommit:
                    conn.set_autocommit(False)
        except psycopg.Error:
            conn.close()
        finally:
            if dsn is None:
                self._pool.putconn(conn)
            else:
                conn.close()

    # --- export and import -------------------------------------------------------------

    def export(self, *, kinds: Sequence[KindRef] | None = None, batch_size: int = 200) -> Iterator[str]:
        """Every version of every document (of ``kinds``, else all) as JSON lines, in a
        stable order; the same rows always give the same bytes. See :meth:`import_lines`.

        All pages are read in one REPEATABLE READ transaction on a connection of its own,
        so the export is one consistent snapshot even while others write.
        """
        # Not the current span: the caller's code runs between the lines it yields.
        with self._telemetry.call("export", current=False) if _otel.active() else _otel.OFF:
            conn = self._pool.getconn()
            try:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    start = self._core.export_start(
                        None if kinds is None else [self.kinds.name(k) for k in kinds]
                    )
                    try:
                        self._drive(conn, start)
                    except psycopg.Error as exc:
                        raise self._core.translate(exc, start) from exc
                    more = True
                    while more:
                        op = self._core.export_page(batch_size)
                        try:
                            lines, more = self._drive(conn, op)
                        except psycopg.Error as exc:
                            raise self._core.translate(exc, op) from exc
                        for line in lines:
                            yield line
            finally:
                self._pool.putconn(conn)

    def import_lines(
        self, lines: Iterable[str], *, batch_size: int = 1000, progress: Callable[[int], None] | None = None
    ) -> Imported:
        """Restore :meth:`export` lines in one transaction; returns the documents and
        versions written. Rows already stored identically are skipped (it runs again safely); a
        row stored differently raises and nothing is written."""
        docs = vers = done = 0
        batch: builtins.list[str] = []
        check = self._core.import_check()
        with self.transaction():
            for line in lines:
                if line.strip():
                    batch.append(line.strip())
                done += 1
                if len(batch) >= batch_size:
                    got = self._run(
                        partial(self._core.import_lines, batch, done - len(batch) + 1, check), "import_lines"
                    )
                    docs, vers, batch = docs + got.documents, vers + got.versions, []
                    if progress is not None:
                        progress(done)
            got = self._run(
                lambda: self._core.import_lines(batch, done - len(batch) + 1, check), "import_lines"
            )
            check.finish()  # inside the transaction: a file cut short writes nothing
            if progress is not None:
                progress(done)
        return Imported(docs + got.documents, vers + got.versions)


def _pool_class(options: Mapping[str, Any]) -> type[ConnectionPool[Any]]:
    """The pool a store opens: one that keeps a spare connection (docstore._spare_async),
    unless a ``reset`` callback was given, which every return must run, or
    ``close_returns``, whose closing returns a connection to the pool."""
    return ConnectionPool if "reset" in options or options.get("close_returns") else SparePool


def _made(op: Op[T]) -> Callable[[], Op[T]]:
    """An op already built, as ``_run``'s maker."""
    return lambda: op
