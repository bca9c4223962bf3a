"""pytest fixtures for code that uses docstore, on pytest-postgresql.

Installed as a pytest plugin (entry point ``docstore``), so a project that depends on
``docstore[testing]`` gets these fixtures without writing any:

* ``docstore_store`` — a :class:`~docstore.DocStore` on an empty, initialised store;
* ``docstore_async_store`` — the same as an :class:`~docstore.AsyncDocStore`;
* ``docstore_factory`` — ``docstore_factory(schema=None, kinds=None)`` for more stores;
* ``docstore_kinds`` — the session's :class:`~docstore.Registry`; override it in your
  conftest to register your kinds once for the whole session;
* ``docstore_schemas`` — the session's :class:`SchemaPool` of initialised schemas.

Each test gets an empty store of its own, in a PostgreSQL schema of one database made for
the session. The schemas are kept between tests: after each test its schema is emptied
(its rows deleted, its sequences restarted, its first rows put back) and renamed, or
dropped when the test changed its DDL, so that a test pays a few statements where running
the DDL again costs tens of milliseconds (docs/testing.md). The server is found,
in order, from ``DOCSTORE_TEST_URL`` (a DSN, used as it is), or pytest-postgresql's own
settings ``--postgresql-host/--postgresql-port/--postgresql-user/--postgresql-password``
(or the ``postgresql_*`` ini keys) when given, or the library's own ``DOCSTORE_URL`` (or
libpq's ``PG*`` variables) when set, else pytest-postgresql's defaults
(``postgres@127.0.0.1:5432``); on any of these but the first, a database is made for the
session. ``--docstore-server=proc`` has pytest-postgresql start a server (not as root).
When no server answers, the tests fail with a message saying what was tried: they never
skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from .aio import AsyncDocStore
from .dsn import (
    check_dsn,
    describe_dsn,
    idle_connection_is_dead,
    redact,
    resolve_dsn,
    server_configured,
)
from .errors import DocStoreError
from .extras import install_extra
from .kinds import Registry
from .store import DocStore

__all__ = [
    "SchemaPool",
    "docstore_async_store",
    "docstore_dsn",
    "docstore_factory",
    "docstore_kinds",
    "docstore_pool",
    "docstore_schemas",
    "docstore_store",
]

ENV_URL = "DOCSTORE_TEST_URL"
# Set when docstore_dsn made the session's database (and drops it, schemas and all).
_SESSION_DATABASE = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("docstore")
    group.addoption(
        "--docstore-url",
        dest="docstore_url",
        default=None,
        help=f"DSN of the database docstore's fixtures use (else ${ENV_URL}, else "
        "pytest-postgresql's --postgresql-* settings)",
    )
    group.addoption(
        "--docstore-server",
        dest="docstore_server",
        default=None,
        choices=("noproc", "proc"),
        help="noproc: use a running server (default); proc: let pytest-postgresql "
        "start one (needs PostgreSQL's binaries, and not root)",
    )
    parser.addini("docstore_server", "noproc or proc (see --docstore-server)", default="noproc")
    group.addoption(
        "--docstore-fresh-schemas",
        dest="docstore_fresh_schemas",
        action="store_true",
        default=False,
        help="give every test a newly created store instead of an emptied one kept from an "
        "earlier test (slower; to rule the reuse out)",
    )


def _fail(message: str) -> NoReturn:
    pytest.fail(f"docstore fixtures: {message}", pytrace=False)


def _reachable(dsn: str, origin: str) -> None:
    """Fail the test at once, saying what was tried, if the server does not answer."""
    try:
        check_dsn(dsn)  # libpq's parse errors may quote a password
    except DocStoreError as exc:
        _fail(f"{exc} ({origin})")
    try:
        with psycopg.connect(dsn, connect_timeout=3, autocommit=True):
            pass
    except psycopg.Error as exc:
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, dsn)
        _fail(
            f"cannot reach PostgreSQL at {describe_dsn(dsn)} ({origin}): {reason}. Start the "
            f"server, point {ENV_URL} or --postgresql-host/--postgresql-port at one, or use "
            "--docstore-server=proc"
        )


def _dsn(host: str, port: Any, user: str, password: str | None, dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(host=host, port=str(port), user=user, password=password or None, dbname=dbname)


@pytest.fixture(scope="session")
def docstore_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a database made for this test session (dropped at its end).

    With ``DOCSTORE_TEST_URL`` (or ``--docstore-url``) that database is used as it is.
    """
    url = request.config.getoption("docstore_url") or os.environ.get(ENV_URL)
    if url:
        _reachable(url, "DOCSTORE_TEST_URL")
        yield url
        return
    try:
        from pytest_postgresql.config import get_config
        from pytest_postgresql.janitor import DatabaseJanitor
    except ImportError:
        # The plugin loads without it (docstore installed without the extra must not break
        # anyone's pytest); the fixtures say what to install when a test asks for them.
        missing = True
    else:
        missing = False
    if missing:
        _fail(
            f"the fixtures need pytest-postgresql, which is not installed: {install_extra('testing')} "
            f"(or set {ENV_URL} to a database they may use as it is)"
        )

    mode = request.config.getoption("docstore_server") or request.config.getini("docstore_server")
    if mode == "proc":
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            _fail(
                "--docstore-server=proc asks pytest-postgresql to start PostgreSQL, which "
                "refuses to run as root: run the tests as another user, or use a running "
                "server (the default, noproc: --postgresql-host/--postgresql-port or "
                f"{ENV_URL})"
            )
        server = request.getfixturevalue("postgresql_proc")
        host, port, user, password = server.host, server.port, server.user, server.password
        origin = "a server started by pytest-postgresql"
        maintenance = get_config(request).maintenance_dbname or "postgres"
    elif not _postgresql_options_given(request) and server_configured():
        # The library's and the command's own settings: the same server, a database of its own.
        origin = "DOCSTORE_URL" if os.environ.get("DOCSTORE_URL") else "libpq's PG* variables"
        env_dsn = resolve_dsn(None)
        _reachable(env_dsn, origin)
        with psycopg.connect(env_dsn, connect_timeout=3, autocommit=True) as conn:
            info = conn.info
            host, port, user = info.host, info.port, info.user
            password, maintenance = info.password or None, info.dbname
    else:
        config = get_config(request)
        host, port = config.host, config.port or 5432
        user, password = config.user, config.password
        origin = "pytest-postgresql's --postgresql-host/--postgresql-port settings"
        maintenance = config.maintenance_dbname or "postgres"
    _reachable(_dsn(host, port, user, password, maintenance), origin)
    dbname = f"docstore_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    janitor = DatabaseJanitor(
        user=user,
        host=host,
        port=port,
        dbname=dbname,
        password=password,
        maintenance_dbname=maintenance,
        connection_timeout=5,
    )
    with janitor:
        request.config.stash[_SESSION_DATABASE] = True
        yield _dsn(host, port, user, password, dbname)


# pytest-postgresql's defaults: a value other than these was given on purpose.
_POSTGRESQL_DEFAULTS = {"host": "127.0.0.1", "port": None, "user": "postgres", "password": None}


def _postgresql_options_given(request: pytest.FixtureRequest) -> bool:
    """Whether pytest-postgresql's server settings were given (command line or ini)."""
    for option, default in _POSTGRESQL_DEFAULTS.items():
        name = f"postgresql_{option}"
        if request.config.getoption(name, None) is not None:
            return True
        if (request.config.getini(name) or None) != default:
            return True
    return False


def _check_idle(conn: psycopg.Connection[Any]) -> None:
    # Same check as the stores' own pools: a server restart mid-session must not hand the
    # next tests dead connections.
    if idle_connection_is_dead(conn):
        conn.close()
        raise psycopg.OperationalError("connection closed by the server while idle")


@pytest.fixture(scope="session")
def docstore_pool(docstore_dsn: str) -> Iterator[ConnectionPool[Any]]:
    """One connection pool for the session; every store fixture borrows it."""
    pool: ConnectionPool[Any] = ConnectionPool(
        docstore_dsn,
        min_size=1,
        max_size=16,
        open=True,
        check=_check_idle,
        kwargs={"autocommit": True},
        name="docstore-tests",
    )
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def docstore_kinds() -> Registry:
    """The kinds every store fixture starts with. Override it to register yours once."""
    return Registry()


def _new_schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


def _drop(pool: ConnectionPool[Any], schema: str) -> None:
    with pool.connection() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# What a test could change of a schema's DDL: every catalog row of the schema's objects
# (relations, columns, defaults, indexes, constraints, triggers, rules, policies,
# sequences, partitions, comments, functions, types, operators, collations, statistics
# objects, extensions, default privileges), counted and summed by the transaction that
# last wrote it (xmin: CREATE, ALTER, GRANT, DROP, CREATE OR REPLACE each write rows),
# one line per catalog; and what is updated in place, without a new row: the schema's
# owner and privileges (its row changes at each reuse, by the rename), and each table's
# planner figures and freeze horizon (VACUUM, ANALYZE), which would leave the next test
# plans a new store does not have. A schema whose lines differ from those it had when
# made is dropped, not reused. Reading contents (view and index definitions...) instead
# costs about four times as much, for the same changes.
_CATALOG = """
WITH rel AS (SELECT oid, xmin FROM pg_class WHERE relnamespace = %(ns)s)
SELECT kind || ' ' || count(*) || ' ' || coalesce(sum(x::text::bigint), 0) FROM (
    SELECT 'relation' AS kind, xmin AS x FROM rel
    UNION ALL SELECT 'column', a.xmin FROM pg_attribute a JOIN rel ON rel.oid = a.attrelid
    UNION ALL SELECT 'default', d.xmin FROM pg_attrdef d JOIN rel ON rel.oid = d.adrelid
    UNION ALL SELECT 'index', i.xmin FROM pg_index i JOIN rel ON rel.oid = i.indrelid
    UNION ALL SELECT 'constraint', xmin FROM pg_constraint WHERE connamespace = %(ns)s
    UNION ALL SELECT 'trigger', t.xmin FROM pg_trigger t JOIN rel ON rel.oid = t.tgrelid
    UNION ALL SELECT 'rule', r.xmin FROM pg_rewrite r JOIN rel ON rel.oid = r.ev_class
    UNION ALL SELECT 'policy', p.xmin FROM pg_policy p JOIN rel ON rel.oid = p.polrelid
    UNION ALL SELECT 'sequence', q.xmin FROM pg_sequence q JOIN rel ON rel.oid = q.seqrelid
    UNION ALL SELECT 'partition', i.xmin FROM pg_inherits i JOIN rel ON rel.oid = i.inhrelid
    UNION ALL SELECT 'comment', d.xmin FROM pg_description d JOIN rel ON rel.oid = d.objoid
    UNION ALL SELECT 'function', xmin FROM pg_proc WHERE pronamespace = %(ns)s
    UNION ALL SELECT 'type', xmin FROM pg_type WHERE typnamespace = %(ns)s
    UNION ALL SELECT 'operator', xmin FROM pg_operator WHERE oprnamespace = %(ns)s
    UNION ALL SELECT 'collation', xmin FROM pg_collation WHERE collnamespace = %(ns)s
    UNION ALL SELECT 'statistics', xmin FROM pg_statistic_ext WHERE stxnamespace = %(ns)s
    UNION ALL SELECT 'extension', xmin FROM pg_extension WHERE extnamespace = %(ns)s
    UNION ALL SELECT 'default privileges', xmin FROM pg_default_acl WHERE defaclnamespace = %(ns)s
) AS catalog GROUP BY kind
UNION ALL
SELECT concat_ws(' ', 'schema', nspowner, nspacl) FROM pg_namespace WHERE oid = %(ns)s
UNION ALL
SELECT concat_ws(' ', 'planner', relname, relpages, reltuples, relallvisible, relfrozenxid, relminmxid)
FROM pg_class WHERE relnamespace = %(ns)s AND relkind IN ('r', 'p', 'm')
ORDER BY 1
"""

# The schema's tables that hold rows (a partitioned table's partitions are emptied through
# it) and its sequences, as they are when it is made: its catalog does not change after.
_TABLES = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = %(ns)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1
"""
_SEQUENCES = """
SELECT c.relname, s.seqstart FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
WHERE c.relnamespace = %(ns)s ORDER BY 1
"""
# In one round trip: the schema (by the OID it had when made: a schema a test dropped
# and made again is another), the size of its tables with their indexes and TOAST, and
# its catalog's lines.
_LOOK = f"""
SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
        WHERE c.relnamespace = %(ns)s AND c.relkind = 'r'),
       ARRAY({_CATALOG})
FROM pg_namespace WHERE oid = %(ns)s AND nspname = %(schema)s
"""

# Up to this size (tables, their indexes and TOAST) a schema is emptied with DELETE, which
# costs a fraction of TRUNCATE's new files for every table and index; past it, TRUNCATE
# gives the space back: the dead rows DELETE leaves (no VACUUM runs in between) stay
# bounded by this.
_DELETE_UP_TO = 1 << 20


@dataclass
class _Kept:
    """What a schema held when it was made: its DDL and its first rows (the DDL version)."""

    partitions: int | None
    namespace: int
    catalog: list[str]
    tables: list[str]
    sequences: list[tuple[str, int]]
    rows: dict[str, str]


class SchemaPool:
    """Initialised docstore schemas kept for a session's tests.

    :meth:`take` gives a schema holding an empty store, made with ``init_schema`` the first
    time; :meth:`give_back` empties it for the next test, or drops it when the test changed
    its DDL (an index, a table, a grant, a column, statistics...: anything in the catalog).
    An emptied schema is renamed, so every test sees a name of its own, and a statement
    left running by an earlier test fails instead of writing into a later one's store.
    """

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool
        #: Every store made anew, as before there was a pool (``--docstore-fresh-schemas``).
        self.fresh = False
        #: Seconds :meth:`give_back` waits for a lock a test left held on its schema before
        #: it leaves that schema to :meth:`close` and goes on.
        self.lock_timeout = 10.0
        self._free: dict[int | None, list[str]] = {}
        self._kept: dict[str, _Kept] = {}
        self._once: set[str] = set()
        self._stuck: list[str] = []
        #: How many schemas were made, emptied and dropped (for the suite's own checks).
        self.made = self.emptied = self.dropped = 0

    def take(self, partitions: int | None = None, *, fresh: bool = False) -> str:
        """A schema with an empty store, ``versions`` hash-partitioned into ``partitions``:
        a kept one when there is one, else a new one. ``fresh=True``: always a new one,
        dropped when given back."""
        once = fresh or self.fresh
        free = self._free.get(partitions)
        if free and not once:
            return free.pop()
        schema = _new_schema()
        DocStore(self.pool, schema=schema).init_schema(partitions=partitions)
        self.made += 1
        if once:
            self._once.add(schema)
            return schema
        with self.pool.connection() as conn:
            (ns,) = _one(conn.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [schema]))
            (_, catalog) = _one(conn.execute(_LOOK, {"schema": schema, "ns": ns}))
            tables = [str(table) for (table,) in conn.execute(_TABLES, {"ns": ns}).fetchall()]
            sequences = [(str(n), int(start)) for n, start in conn.execute(_SEQUENCES, {"ns": ns}).fetchall()]
            rows = {}
            for table in tables:
                query = sql.SQL("SELECT jsonb_agg(to_jsonb(t))::text FROM {} t")
                (saved,) = _one(conn.execute(query.format(sql.Identifier(schema, table))))
                if saved is not None:
                    rows[table] = saved
        self._kept[schema] = _Kept(partitions, ns, [str(line) for line in catalog], tables, sequences, rows)
        return schema

    def give_back(self, schema: str) -> None:
        """Empty ``schema`` for another test and keep it under a new name, or drop it when
        its DDL is no longer the one it was made with."""
        if schema in self._once:
            self._once.discard(schema)
            _drop(self.pool, schema)
            self.dropped += 1
            return
        kept = self._kept.pop(schema)
        renamed = _new_schema()
        with self.pool.connection() as conn:
            found = conn.execute(_LOOK, {"schema": schema, "ns": kept.namespace}).fetchone()
            changed = found is None or [str(line) for line in found[1]] != kept.catalog
            truncate = not changed and found[0] > _DELETE_UP_TO
            if changed:
                body = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            else:
                body = _emptying(schema, renamed, kept, truncate=truncate)
            # One round trip, in one transaction whose locks are waited for no longer than
            # lock_timeout: a transaction a test left open on the store must not hang the
            # session.
            timeout = sql.Literal(f"{round(self.lock_timeout * 1000)}ms")
            try:
                conn.execute(sql.SQL("BEGIN; SET LOCAL lock_timeout = {}; {}; COMMIT").format(timeout, body))
            except psycopg.errors.LockNotAvailable:
                conn.execute("ROLLBACK")
                self._stuck.append(schema)  # left to close(), which tries once more to drop it
                return
            if truncate:  # new files for the tables: catalog rows written by this emptying
                (_, catalog) = _one(conn.execute(_LOOK, {"schema": renamed, "ns": kept.namespace}))
                kept.catalog = [str(line) for line in catalog]
        if changed:
            self.dropped += 1
            return
        self._kept[renamed] = kept
        self._free.setdefault(kept.partitions, []).append(renamed)
        self.emptied += 1

    def close(self) -> None:
        """Drop every schema kept (and any a test left locked, if it can now)."""
        for schema in [*self._kept, *self._once]:
            _drop(self.pool, schema)
        for schema in self._stuck:
            try:
                with self.pool.connection() as conn, conn.transaction():
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", [f"{self.lock_timeout}s"])
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            except psycopg.errors.LockNotAvailable:
                pass  # still held: left to the session database's drop
        self._kept.clear()
        self._free.clear()
        self._once.clear()
        self._stuck.clear()


def _one(cur: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cur.fetchone()
    assert row is not None
    return tuple(row)


def _emptying(schema: str, renamed: str, kept: _Kept, *, truncate: bool) -> sql.Composed:
    """The statements, sent at once in one transaction, that put every table of ``schema``
    back to the rows it was made with and every sequence to its start, then rename it
    ``renamed``."""
    tables = [sql.Identifier(schema, table) for table in kept.tables]
    # Waits for any transaction still writing there (a connection a test left open):
    # rows it committed after the DELETE would be in the next test's store.
    statements = [sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.SQL(", ").join(tables))]
    if truncate:
        statements.append(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(tables)))
    else:
        statements += [sql.SQL("DELETE FROM {}").format(table) for table in tables]
    for sequence, start in kept.sequences:
        regclass = sql.Literal(".".join('"' + name.replace('"', '""') + '"' for name in (schema, sequence)))
        statements.append(sql.SQL("SELECT setval({}::regclass, {}, false)").format(regclass, start))
    restore = sql.SQL(
        "INSERT INTO {0} OVERRIDING SYSTEM VALUE"
        " SELECT * FROM jsonb_populate_recordset(NULL::{0}, {1}::jsonb)"
    )
    for table, rows in kept.rows.items():
        statements.append(restore.format(sql.Identifier(schema, table), sql.Literal(rows)))
    rename = sql.SQL("ALTER SCHEMA {} RENAME TO {}")
    statements.append(rename.format(sql.Identifier(schema), sql.Identifier(renamed)))
    return sql.SQL("; ").join(statements)


@pytest.fixture(scope="session")
def docstore_schemas(
    request: pytest.FixtureRequest, docstore_pool: ConnectionPool[Any]
) -> Iterator[SchemaPool]:
    """The session's :class:`SchemaPool`: the initialised schemas the store fixtures take
    and give back; its schemas are dropped at the session's end (with the database, when
    the session made one)."""
    schemas = SchemaPool(docstore_pool)
    schemas.fresh = bool(request.config.getoption("docstore_fresh_schemas", False))
    try:
        yield schemas
    finally:
        if not request.config.stash.get(_SESSION_DATABASE, False):
            schemas.close()


@pytest.fixture
def docstore_factory(
    docstore_pool: ConnectionPool[Any], docstore_kinds: Registry, docstore_schemas: SchemaPool
) -> Iterator[Callable[..., DocStore]]:
    """``make(schema=None, kinds=None, init=True, partitions=None, fresh=False) -> DocStore``.

    Each store is empty and in a schema of its own. Without ``schema`` it is one of the
    session's kept schemas (``docstore_schemas``), emptied after the test; ``fresh=True``
    (or ``init=False``, or a ``schema`` name) makes a new one instead, dropped after the
    test. ``partitions=N``: a hash-partitioned ``versions`` table (``DocStore.init_schema``).
    """
    taken: list[str] = []
    made: list[str] = []

    def make(
        schema: str | None = None,
        kinds: Registry | None = None,
        *,
        init: bool = True,
        partitions: int | None = None,
        fresh: bool = False,
    ) -> DocStore:
        registry = (kinds if kinds is not None else docstore_kinds).copy()
        if schema is None and init:
            taken.append(docstore_schemas.take(partitions, fresh=fresh))
            return DocStore(docstore_pool, schema=taken[-1], kinds=registry)
        schema = schema or _new_schema()
        made.append(schema)
        store = DocStore(docstore_pool, schema=schema, kinds=registry)
        if init:
            store.init_schema(partitions=partitions)
        return store

    yield make
    for schema in taken:
        docstore_schemas.give_back(schema)
    for schema in made:
        _drop(docstore_pool, schema)


@pytest.fixture
def docstore_store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    """A DocStore on an empty, initialised schema of its own (see ``docstore_factory``)."""
    return docstore_factory()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture then says what is missing

    @pytest.fixture
    def docstore_async_store() -> None:
        """An AsyncDocStore on an empty schema of its own (needs pytest-asyncio)."""
        _fail(f"docstore_async_store needs pytest-asyncio: {install_extra('testing')}")

else:

    @pytest_asyncio.fixture
    async def docstore_async_store(  # type: ignore[misc]
        docstore_dsn: str, docstore_schemas: SchemaPool, docstore_kinds: Registry
    ) -> AsyncIterator[AsyncDocStore]:
        """An AsyncDocStore on an empty, initialised schema of its own (see
        ``docstore_factory``), on a pool of its own; the schema is emptied after the test."""
        schema = docstore_schemas.take()
        try:
            store = await AsyncDocStore.connect(
                docstore_dsn, schema=schema, kinds=docstore_kinds.copy(), max_size=8
            )
            try:
                yield store
            finally:
                await store.close()
        finally:
            docstore_schemas.give_back(schema)
