"""pytest fixtures for code that uses docstore, on pytest-postgresql.

Installed as a pytest plugin (entry point ``docstore``), so a project that depends on
``docstore[testing]`` gets these fixtures without writing any:

* ``docstore_store`` — a :class:`~docstore.DocStore` on a fresh, initialised store;
* ``docstore_async_store`` — the same as an :class:`~docstore.AsyncDocStore`;
* ``docstore_factory`` — ``docstore_factory(schema=None, kinds=None)`` for more stores;
* ``docstore_kinds`` — the session's :class:`~docstore.Registry`; override it in your
  conftest to register your kinds once for the whole session.

Each test gets its own PostgreSQL schema in one database made for the session, which
costs a few milliseconds where a database per test costs hundreds. The server is found,
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
    "docstore_async_store",
    "docstore_dsn",
    "docstore_factory",
    "docstore_kinds",
    "docstore_pool",
    "docstore_store",
]

ENV_URL = "DOCSTORE_TEST_URL"


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


@pytest.fixture
def docstore_factory(
    docstore_pool: ConnectionPool[Any], docstore_kinds: Registry
) -> Iterator[Callable[..., DocStore]]:
    """``make(schema=None, kinds=None, init=True, partitions=None) -> DocStore``; every
    schema it made is dropped after the test. ``partitions=N`` initialises the store with a
    hash-partitioned ``versions`` table (see ``DocStore.init_schema``)."""
    made: list[str] = []

    def make(
        schema: str | None = None,
        kinds: Registry | None = None,
        *,
        init: bool = True,
        partitions: int | None = None,
    ) -> DocStore:
        schema = schema or _new_schema()
        made.append(schema)
        store = DocStore(
            docstore_pool, schema=schema, kinds=(kinds if kinds is not None else docstore_kinds).copy()
        )
        if init:
            store.init_schema(partitions=partitions)
        return store

    yield make
    for schema in made:
        _drop(docstore_pool, schema)


@pytest.fixture
def docstore_store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    """A DocStore on a fresh, initialised schema of its own, dropped after the test."""
    return docstore_factory()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture then says what is missing

    @pytest.fixture
    def docstore_async_store() -> None:
        """An AsyncDocStore on a fresh schema (needs pytest-asyncio)."""
        _fail(f"docstore_async_store needs pytest-asyncio: {install_extra('testing')}")

else:

    @pytest_asyncio.fixture
    async def docstore_async_store(  # type: ignore[misc]
        docstore_dsn: str, docstore_pool: ConnectionPool[Any], docstore_kinds: Registry
    ) -> AsyncIterator[AsyncDocStore]:
        """An AsyncDocStore on a fresh, initialised schema of its own, dropped after the test."""
        schema = _new_schema()
        store = await AsyncDocStore.connect(
            docstore_dsn, schema=schema, kinds=docstore_kinds.copy(), max_size=8
        )
        try:
            await store.init_schema()
            yield store
        finally:
            await store.close()
            _drop(docstore_pool, schema)
