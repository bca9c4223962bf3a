"""Secrets, least privilege and TLS.

* A password in the DSN never shows in a repr, an exception (its text, its traceback, its
  chained causes) or a log line, psycopg_pool's included, on failing and working connects.
* A role that may only SELECT/INSERT/UPDATE/DELETE the two tables runs every runtime
  operation; init_schema() under it raises PermissionDenied.
* sslmode=require against a server without TLS fails at once with DatabaseUnavailable.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from docstore import AsyncDocStore, DatabaseUnavailable, DocStore, DocStoreError, PermissionDenied, _sql
from docstore.dsn import describe_dsn

PASSWORD = "Pw-" + uuid.uuid4().hex  # unique, so any occurrence is a leak


class Config(BaseModel):
    value: int


class Message(BaseModel):
    role: str
    content: str


def _everything_said(exc: BaseException) -> str:
    """All an exception can show: str, repr, traceback, and its causes and contexts."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), *traceback.format_exception(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def _with_password(dsn: str, **changes: Any) -> str:
    params = conninfo_to_dict(dsn)
    params.update(password=PASSWORD, **changes)
    return make_conninfo("", **params)


def _url(dsn: str, **changes: Any) -> str:
    p = {**conninfo_to_dict(dsn), **changes}
    return (
        f"postgresql://{p.get('user', 'postgres')}:{PASSWORD}@{p.get('host', '127.0.0.1')}:"
        f"{p.get('port', 5432)}/{p.get('dbname', 'test')}"
    )


def _failing_dsns(dsn: str) -> list[str]:
    return [
        _with_password(dsn, port="1"),  # nothing listening
        _with_password(dsn, dbname="no_such_db_" + uuid.uuid4().hex[:6]),
        _with_password(dsn, user="no_such_role_" + uuid.uuid4().hex[:6]),
        _with_password(dsn, sslmode="require"),  # the server has no TLS
        _url(dsn, port=1),
        _url(dsn)[len("postgresql://") :],  # URL without its scheme
        _url(dsn).replace(PASSWORD, PASSWORD + "%zz"),  # a bad %-escape
        PASSWORD,  # the password alone
        f"host=127.0.0.1 {PASSWORD}",
    ]


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in ("psycopg", "psycopg.pool", "docstore"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def test_a_failing_connect_never_shows_the_password(
    docstore_dsn: str, all_logs: pytest.LogCaptureFixture
) -> None:
    for dsn in _failing_dsns(docstore_dsn):
        with pytest.raises(DatabaseUnavailable) as err:
            DocStore.connect(dsn, timeout=1)
        said = _everything_said(err.value)
        assert PASSWORD not in said, (dsn, said)
        assert "cannot connect to PostgreSQL" in str(err.value)
    assert all_logs.records, "psycopg_pool logged nothing: the capture is not working"
    assert PASSWORD not in all_logs.text


def test_a_failing_async_connect_never_shows_the_password(
    docstore_dsn: str, all_logs: pytest.LogCaptureFixture
) -> None:
    async def attempt(dsn: str) -> BaseException:
        try:
            await AsyncDocStore.connect(dsn, timeout=1)
        except DatabaseUnavailable as exc:
            return exc
        raise AssertionError(f"connected to {dsn!r}")

    for dsn in _failing_dsns(docstore_dsn)[3:]:  # the shells share the rest of the path
        exc = asyncio.run(attempt(dsn))
        assert PASSWORD not in _everything_said(exc)
    assert PASSWORD not in all_logs.text


def test_a_working_store_never_shows_the_password(
    docstore_dsn: str, docstore_pool: ConnectionPool[Any], all_logs: pytest.LogCaptureFixture
) -> None:
    # The local server trusts its users, so the password is accepted and ignored.
    app = "docstore-secret-" + uuid.uuid4().hex[:8]
    schema = "t_" + uuid.uuid4().hex[:16]
    dsn = _with_password(docstore_dsn, application_name=app)
    with DocStore.connect(dsn, schema=schema, max_size=1) as store:
        assert PASSWORD not in repr(store) and PASSWORD not in str(store)
        assert PASSWORD not in repr(store.pool)
        store.register("config", Config)
        errors = []
        try:
            store.get("config", "a")  # no schema yet
        except DocStoreError as exc:
            errors.append(exc)
        store.init_schema()
        try:
            store.put("config", "a", {"value": "not a number"})
        except DocStoreError as exc:
            errors.append(exc)
        store.put("config", "a", {"value": 1})
        with docstore_pool.connection() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = %s",
                [app],
            )
        assert store.get("config", "a").version == 1  # reconnected, with the password
        with store.pool.connection() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    assert len(errors) == 2
    for error in errors:
        assert PASSWORD not in _everything_said(error)
    assert PASSWORD not in all_logs.text


def _unparseable_dsns(dsn: str) -> list[str]:
    """DSNs libpq refuses with a message quoting the password (`missing "=" after ...`,
    `invalid percent-encoded token: ...`)."""
    return [
        _url(dsn)[len("postgresql://") :],  # URL without its scheme
        _url(dsn).replace(PASSWORD, PASSWORD + "%zz"),  # a bad %-escape
        PASSWORD,  # the password alone
        f"host=127.0.0.1 {PASSWORD}",
    ]


def _error_of(call: Callable[[str], Any], dsn: str) -> DocStoreError:
    try:
        call(dsn)
    except DocStoreError as exc:
        return exc
    raise AssertionError("no error")


def _connection_paths(
    good: str, schema: str
) -> tuple[dict[str, Callable[[str], Any]], dict[str, Callable[[str], Any]]]:
    """Each way a DSN reaches a connection, as ``call(dsn)``: those that fail on a server
    that is down, and those (replicas) that fail only on a DSN libpq cannot parse."""
    from docstore.agents import AsyncStorageManager, StorageManager

    def feed(dsn: str) -> None:
        with DocStore.connect(good, schema=schema, max_size=1) as store:
            next(iter(store.changes(listen_dsn=dsn, poll_interval=0.05)))

    async def async_feed(dsn: str) -> None:
        async with await AsyncDocStore.connect(good, schema=schema, max_size=1) as astore:
            async for _change in astore.changes(listen_dsn=dsn, poll_interval=0.05):
                break

    async def async_read_dsn(dsn: str) -> None:
        await AsyncDocStore.connect(good, read_dsn=dsn, schema=schema, max_size=1)

    def watch(dsn: str) -> None:
        with StorageManager(DocStore.connect(good, schema=schema, max_size=1)) as manager:
            watching = manager.watch_configs(listen_dsn=dsn, poll_interval=0.05)
            for _ in range(500):
                if not watching.running:
                    break
                time.sleep(0.01)
            assert watching.error is not None, "the watch did not stop"
            raise watching.error

    async def async_watch(dsn: str) -> None:
        manager = AsyncStorageManager(await AsyncDocStore.connect(good, schema=schema, max_size=1))
        async with manager:
            watching = await manager.watch_configs(listen_dsn=dsn, poll_interval=0.05)
            for _ in range(500):
                if not watching.running:
                    break
                await asyncio.sleep(0.01)
            assert watching.error is not None, "the watch did not stop"
            raise watching.error

    def from_env(**environ: str) -> None:
        StorageManager.from_env(environ={"AURITE_ENABLE_DB": "1", **environ}, timeout=1)

    paths: dict[str, Callable[[str], Any]] = {
        "listen_dsn": feed,
        "async listen_dsn": lambda dsn: asyncio.run(async_feed(dsn)),
        "watch_configs(listen_dsn=)": watch,
        "async watch_configs(listen_dsn=)": lambda dsn: asyncio.run(async_watch(dsn)),
        "AURITE_DB_URL": lambda dsn: from_env(AURITE_DB_URL=dsn),
    }
    # A replica that is down is no error (reads go to the primary): only the unparseable.
    read_paths: dict[str, Callable[[str], Any]] = {
        "read_dsn": lambda dsn: DocStore.connect(good, read_dsn=dsn, schema=schema),
        "async read_dsn": lambda dsn: asyncio.run(async_read_dsn(dsn)),
        "AURITE_DB_READ_URL": lambda dsn: from_env(AURITE_DB_URL=good, AURITE_DB_READ_URL=dsn),
    }
    return paths, read_paths


def test_every_connection_path_keeps_the_password_of_a_dsn_out_of_errors_and_logs(
    docstore_dsn: str,
    docstore_store: DocStore,
    all_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Issue 24, break 5: read_dsn, listen_dsn (the feed's and watch_configs'), the CLI's
    --dsn, and the agents' AURITE_DB_URL / AURITE_DB_READ_URL, with a DSN libpq cannot
    parse and with one it parses but cannot connect to."""
    from docstore.cli import main

    good = docstore_dsn
    refused = _with_password(docstore_dsn, port="1")  # parses, nothing listening
    paths, read_paths = _connection_paths(good, docstore_store.schema)
    leaks: list[tuple[str, str]] = []
    unnamed: list[str] = []  # errors that do not say which DSN cannot be parsed
    for dsn in [*_unparseable_dsns(good), refused]:
        errors = {path: _error_of(call, dsn) for path, call in paths.items()}
        if dsn != refused:
            errors.update({path: _error_of(call, dsn) for path, call in read_paths.items()})
            for path in ("read_dsn", "listen_dsn"):
                unnamed += [] if f"the {path} cannot be parsed" in str(errors[path]) else [path]
        leaks += [(path, dsn) for path, exc in errors.items() if PASSWORD in _everything_said(exc)]
        for argv in (["--dsn", dsn, "get", "llm", "x"], ["--json", f"--dsn={dsn}", "ls", "llm"]):
            assert main(argv) == 1
            out, err = capfd.readouterr()
            assert "cannot connect" in err, (argv, err)
            leaks += [(f"docstore {argv[-3]}", dsn)] if PASSWORD in out + err else []
    assert leaks == [], sorted({path for path, _ in leaks})
    assert PASSWORD not in all_logs.text
    assert unnamed == []


def test_redact_blanks_the_password_of_a_dsn_libpq_cannot_parse() -> None:
    """The one redaction every path uses also finds the password in a DSN that does not
    parse, and in libpq's messages quoting it."""
    from docstore._connect import redact

    for dsn in _unparseable_dsns("host=127.0.0.1 port=5432 user=app dbname=db"):
        try:
            psycopg.connect(dsn)
        except psycopg.ProgrammingError as exc:
            message = str(exc)
        assert PASSWORD in message  # libpq's own text quotes it
        assert PASSWORD not in redact(message, dsn), message
        assert PASSWORD not in redact(f"connecting to {dsn} failed", dsn)
    assert redact("a password=Pw-1 b", "host=x password=Pw-1") == "a password=*** b"
    assert redact("p%zz and p@ss", "postgresql://u:p%40ss@h/d?password=p%zz&x=1") == "*** and ***"
    for plain in ("postgresql://app@db/x", "host=db port=5432 user=app", "postgresql://db:5432/x"):
        assert redact(f"at {plain}: refused", plain) == f"at {plain}: refused"  # no password


# --- least privilege ---------------------------------------------------------------------


@pytest.fixture
def runtime_role(docstore_store: DocStore, docstore_dsn: str) -> Iterator[str]:
    """A login role that may only SELECT/INSERT/UPDATE/DELETE the two tables; dropped after."""
    role = "docstore_rt_" + uuid.uuid4().hex[:10]
    schema = sql.Identifier(docstore_store.schema)
    ident = sql.Identifier(role)
    with docstore_store.pool.connection() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {}.documents, {}.versions TO {}").format(
                schema, schema, ident
            )
        )
        conn.execute(sql.SQL("GRANT SELECT, INSERT, DELETE ON {}.changes TO {}").format(schema, ident))
        conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {}.changes_seq_seq TO {}").format(schema, ident))
    try:
        yield role
    finally:
        with docstore_store.pool.connection() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = %s", [role]
            )
            conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            conn.execute(sql.SQL("DROP ROLE {}").format(ident))


def test_a_role_with_only_dml_rights_on_the_two_tables_runs_every_runtime_operation(
    docstore_store: DocStore, docstore_dsn: str, runtime_role: str
) -> None:
    dsn = make_conninfo(docstore_dsn, user=runtime_role)
    with DocStore.connect(dsn, schema=docstore_store.schema, max_size=2) as store:
        store.register("config", Config)
        store.register("chat", Message, mode="log")
        assert store.put("config", "a", {"value": 1}, expected_version=0).version == 1
        assert store.put("config", "a", {"value": 2}, expected_version=1).version == 2
        assert store.get("config", "a", version=1).data.value == 1
        assert [d.name for d in store.put_many("config", {"b": {"value": 1}, "c": {"value": 1}})] == [
            "b",
            "c",
        ]
        assert set(store.get_many("config", ["a", "b", "x"])) == {"a", "b"}
        assert len(store.versions("config", "a")) == 2
        assert store.revert("config", "a", to_version=1).version == 3
        assert [d.name for d in store.list("config", where={"value": 1})] == ["a", "b", "c"]
        assert len(list(store.iter("config", batch_size=2))) == 3
        assert store.delete("config", "c") == 2
        with store.transaction():
            store.put("config", "d", {"value": 4})
            store.append("chat", "s", [{"role": "user", "content": "hi"}])
        assert store.append("chat", "s", [{"role": "assistant", "content": "hello"}]) == 2
        assert [m.content for m in store.read("chat", "s", last=1)] == ["hello"]
        assert store.rewrite("chat", "s", [{"role": "user", "content": "summary"}]) == 3
        assert len(store.read("chat", "s")) == 1
        assert store.clear("chat", "s") == 3
        assert store.prune_versions("config", keep_last=1) >= 2
        assert store.prune_documents("chat", older_than=timedelta(0)) == 1
        assert next(store.changes(after="0.0")).name == "a"
        store.prune_changes(older_than=timedelta(days=1))
        assert store.delete("config", "d") == 2
        store.register("config", Config, schema_version=2, upgraders={1: lambda d: d})
        assert store.upgrade("config") == 2


def test_init_schema_under_a_runtime_role_raises_permission_denied(
    docstore_store: DocStore, docstore_dsn: str, runtime_role: str, docstore_factory: Callable[..., DocStore]
) -> None:
    dsn = make_conninfo(docstore_dsn, user=runtime_role)
    fresh = docstore_factory(init=False).schema  # dropped after the test if created
    record = docstore_store._core.sql(
        "UPDATE {s}.documents SET data = %s WHERE kind = '_docstore' AND name = 'schema'"
    )
    with docstore_store.pool.connection() as conn:
        conn.execute(record, [Jsonb({"ddl_version": 1})])  # a store an upgrade is due on
    for schema in (fresh, docstore_store.schema):
        with DocStore.connect(dsn, schema=schema, max_size=1) as store:
            with pytest.raises(PermissionDenied) as err:
                store.init_schema()
            message = str(err.value)
            assert "lacks a privilege" in message and "permission denied" in message, message
    with docstore_store.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [fresh]).fetchone() == (
            0,
        )
        conn.execute(record, [Jsonb({"ddl_version": _sql.release_ddl_version()})])
    # A store at this release's DDL version needs no DDL: init_schema under the runtime
    # role (a host that calls it at start-up) changes nothing and returns the version.
    with DocStore.connect(dsn, schema=docstore_store.schema, max_size=1) as store:
        assert store.init_schema() == _sql.release_ddl_version()


def test_a_role_without_rights_on_the_tables_gets_permission_denied_not_a_crash(
    docstore_store: DocStore, docstore_dsn: str, runtime_role: str
) -> None:
    with docstore_store.pool.connection() as conn:
        conn.execute(
            sql.SQL("REVOKE INSERT, UPDATE ON {}.documents FROM {}").format(
                sql.Identifier(docstore_store.schema), sql.Identifier(runtime_role)
            )
        )
    dsn = make_conninfo(docstore_dsn, user=runtime_role)
    with DocStore.connect(dsn, schema=docstore_store.schema, max_size=1) as store:
        store.register("config", Config)
        with pytest.raises(PermissionDenied, match="config 'a'"):
            store.put("config", "a", {"value": 1})
        assert store.get_many("config", ["a"]) == {}


# --- TLS ---------------------------------------------------------------------------------


def test_sslmode_require_against_a_server_without_tls_fails_fast_and_clearly(docstore_dsn: str) -> None:
    with psycopg.connect(docstore_dsn) as conn:
        assert conn.execute("SHOW ssl").fetchone() == ("off",), "this test expects no TLS"
    for make in (
        lambda: DocStore.connect(docstore_dsn + " sslmode=require", timeout=1),
        lambda: DocStore.connect(docstore_dsn, timeout=1, kwargs={"sslmode": "require"}),
        lambda: asyncio.run(AsyncDocStore.connect(docstore_dsn + " sslmode=require", timeout=1)),
    ):
        with pytest.raises(DatabaseUnavailable, match="SSL"):
            make()
    with (
        DocStore.connect(docstore_dsn + " sslmode=prefer", max_size=1) as store,
        store.pool.connection() as conn,
    ):
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_url_password_with_a_slash_is_not_shown_where_libpq_misreads_it(docstore_dsn: str) -> None:
    # libpq reads postgresql://u:pa/ss@h/db as host u, port pa, dbname ss@h/db: a
    # description built from those parts would show the password's pieces.
    read_dsn = "postgresql://postgres:pa/ss@127.0.0.1:5432/test"
    assert describe_dsn(read_dsn) == "<unparseable DSN>"
    with DocStore.connect(docstore_dsn, read_dsn=read_dsn, schema="sec_slash") as store:
        shown = repr(store)
    assert "pa/ss" not in shown and ":pa" not in shown and "ss@" not in shown, shown
    assert "reads='<unparseable DSN>'" in shown
