"""Upgrading a store's layout (docs/upgrading.md): every layout an earlier release made,
upgraded in place with its data intact; concurrent, interrupted and repeated upgrades;
and releases that refuse a store at another DDL version before writing anything.

The earlier layouts come from frozen copies of their schema.sql (tests/layouts/). Each
store is filled with what the current release writes (documents, versions, tombstones,
logs, idempotency keys, change rows), copied into the old layout by SQL: the tables'
columns never changed, only what surrounds them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from itertools import islice
from typing import Any

import psycopg
import pytest
from conftest import Run, layout_of
from old_layouts import FIRST_RELEASE_INDEXES, LAYOUTS, LAYOUTS_DIR, Layout, catalog, copy_rows, create, dump
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from servers import PgBouncer

from docstore import DDLVersionMismatch, DocStore, DocStoreError, Registry, _ddl, _partition, _sql
from docstore._plan import Plan, Stmt
from docstore.agents import StorageManager

RELEASE = _sql.release_ddl_version()


def registry() -> Registry:
    kinds = Registry()
    kinds.register("config", dict)
    kinds.register("chat", dict, mode="log")
    return kinds


def msgs(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": t} for t in texts]


def fill(store: DocStore) -> None:
    """One of every kind of row a store holds."""
    store.put("config", "a", {"v": 1}, author="ann")
    store.put("config", "a", {"v": 2}, author="bob")
    store.revert("config", "a", 1)
    store.put("config", "gone", {"v": 1})
    store.delete("config", "gone")  # a tombstone
    store.put("config", "back", {"v": 1})
    store.delete("config", "back")
    store.restore("config", "back")
    store.put("config", "keyed", {"v": 1}, idempotency_key="key-put")
    meta = {"agent_name": "helper", "session_id": "s1"}
    store.append("chat", "s1", msgs("hi", "rain?"), meta=meta, idempotency_key="key-append")
    store.append("chat", "s1", msgs("yes"))
    store.append("chat", "s2", msgs("a", "b"))
    store.rewrite("chat", "s2", msgs("summary"))
    store.append("chat", "s3", msgs("a"))
    store.clear("chat", "s3")
    store.append("chat", "s4", msgs("a"))
    store.delete("chat", "s4")


def record(conn: psycopg.Connection[Any], schema: str) -> Any:
    row = conn.execute(
        sql.SQL("SELECT data FROM {}.documents WHERE kind = '_docstore' AND name = 'schema'").format(
            sql.Identifier(schema)
        )
    ).fetchone()
    return row[0] if row else None


def old_store(
    layout: Layout, docstore_factory: Callable[..., DocStore], conn: psycopg.Connection[Any]
) -> DocStore:
    """A store in ``layout``, filled by the current release and copied in."""
    scratch = docstore_factory(kinds=registry())
    fill(scratch)
    store = docstore_factory(kinds=registry(), init=False)
    create(conn, layout, store.schema)
    copy_rows(conn, scratch.schema, store.schema, layout.has_changes)
    return store


def expected_catalog(
    layout: Layout, docstore_factory: Callable[..., DocStore], conn: psycopg.Connection[Any]
) -> Any:
    """The catalog of a store this release makes, with what an old layout keeps: the
    first release's indexes, and the messages view (the agents layer's since DDL 3, which
    the core's upgrade leaves as it was)."""
    made = docstore_factory(partitions=layout.partitions)
    fresh = catalog(conn, made.schema)
    if layout.first_release_indexes:
        fresh["indexes"] = sorted(fresh["indexes"] + FIRST_RELEASE_INDEXES)
    fresh["views"] = sorted(fresh["views"] + kept_views(conn, layout))
    return fresh


def kept_views(conn: psycopg.Connection[Any], layout: Layout) -> list[Any]:
    """The views of a store made at ``layout`` that this release's schema.sql lacks."""
    scratch = f"t_kept_{uuid.uuid4().hex[:12]}"
    try:
        create(conn, layout, scratch)
        return [row for row in catalog(conn, scratch)["views"] if row[0] == "messages"]
    finally:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(scratch)))


def exercise(store: DocStore, conn: psycopg.Connection[Any]) -> None:
    """Every kind of call, on a store upgraded with rows of the layout before."""
    # A keyed write made before the upgrade still answers its retry, writing nothing.
    written = store.get("config", "keyed")
    assert store.put("config", "keyed", {"v": 1}, idempotency_key="key-put").version == written.version
    cursor = store.change_cursor()
    assert store.put("config", "a", {"v": 3}).version == 4
    assert store.get("config", "a", version=1).data == {"v": 1}
    assert store.append("chat", "s1", msgs("more"), expected_version=3) == 4
    assert [m["content"] for m in store.read("chat", "s1", last=2)] == ["yes", "more"]
    assert store.delete("config", "back") == 4
    assert store.restore("config", "back") == 5
    assert store.restore("chat", "s4") == 1
    assert [d.name for d in store.list("config")] == ["a", "back", "keyed"]
    feed = store.changes(after=cursor, poll_interval=0.05)
    seen = [(c.kind, c.name, c.op) for c in islice(feed, 5)]
    feed.close()  # type: ignore[attr-defined]  # a generator: gives its connection back
    assert seen == [
        ("config", "a", "put"),
        ("chat", "s1", "append"),
        ("config", "back", "delete"),
        ("config", "back", "revert"),
        ("chat", "s4", "restore"),
    ]
    # purge takes a document's idempotency keys with it (DDL 2's index on them).
    assert store.purge("config", ["keyed"]) == ["keyed"]
    assert store.put("config", "keyed", {"v": 1}, idempotency_key="key-put").version == 1
    assert store.prune_documents("chat", keep_last=1) == 3
    assert store.prune_versions("config", keep_last=1) > 0
    assert store.prune_changes(older_than=timedelta(0)) >= 0
    n = conn.execute(
        sql.SQL("SELECT count(*) FROM {}.messages").format(sql.Identifier(store.schema))
    ).fetchone()
    assert n is not None and n[0] >= 1


@pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.name for layout in LAYOUTS])
def test_a_store_of_each_earlier_layout_is_upgraded_in_place_with_its_data_intact(
    layout: Layout, docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        store = old_store(layout, docstore_factory, conn)
        rows_before = dump(conn, store.schema)
        exported = list(store.export())
        assert record(conn, store.schema) == {"ddl_version": layout.ddl_version}
        # This release reads the older store, but writes nothing until it is upgraded.
        assert store.get("config", "a").data == {"v": 1}
        with pytest.raises(
            DDLVersionMismatch,
            match=rf"at DDL version {layout.ddl_version}, older .* \(DDL version {RELEASE}\).*migrate",
        ):
            store.put("config", "new", {"v": 1})
        assert dump(conn, store.schema) == rows_before

        migration = store.migrate(dry_run=True)
        assert (migration.store_version, migration.release_version) == (layout.ddl_version, RELEASE)
        pending = [s.name for s in _ddl.STEPS if s.version > layout.ddl_version]
        assert [s.name for s in migration.steps] == [*pending, "views"]
        assert record(conn, store.schema) == {"ddl_version": layout.ddl_version}  # a dry run changes nothing

        assert store.init_schema(partitions=layout.partitions) == RELEASE
        assert dump(conn, store.schema) == {**rows_before, "changes": rows_before.get("changes", [])}
        assert list(store.export()) == exported
        # The messages view is the agents layer's since DDL version 3: the core's upgrade
        # keeps the one the store has (expected_catalog), the agents layer replaces it.
        assert catalog(conn, store.schema) == expected_catalog(layout, docstore_factory, conn)
        StorageManager(store).init_db()
        made = docstore_factory(partitions=layout.partitions)
        StorageManager(made).init_db()
        assert catalog(conn, store.schema)["views"] == catalog(conn, made.schema)["views"]
        assert record(conn, store.schema) == {"ddl_version": RELEASE, "release": _ddl.release_name()}
        # Again: nothing left to do.
        assert store.migrate().steps == ()
        assert store.init_schema() == RELEASE
        exercise(store, conn)


def test_the_layout_this_release_creates_is_frozen_as_its_ddl_version() -> None:
    """A change to schema.sql is a new DDL version: bump the record, add its steps to
    docstore/_ddl.py, and freeze the file as tests/layouts/v<N>.sql."""
    frozen = (LAYOUTS_DIR / f"v{RELEASE}.sql").read_text(encoding="utf-8")
    assert frozen.split("\n", 2)[2] == _sql.schema_ddl()
    assert max(step.version for step in _ddl.STEPS) == RELEASE
    assert len({step.name for step in _ddl.STEPS}) == len(_ddl.STEPS)
    assert [step.version for step in _ddl.STEPS] == sorted(step.version for step in _ddl.STEPS)


def test_a_release_refuses_to_write_to_a_store_at_a_newer_ddl_version_checking_once_per_pool(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This release knows DDL version 2; a store at version 3 is what a later release
    # leaves, recorded the way it records it: the refusal is this release's own code.
    store = docstore_factory(kinds=registry())
    fill(store)
    checks: list[Any] = []
    checked = _ddl.LayoutPlans.layout_checked

    def counted(self: _ddl.LayoutPlans, op: Any) -> Any:
        checks.append(op)
        return checked(self, op)

    monkeypatch.setattr(_ddl.LayoutPlans, "layout_checked", counted)
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {}.documents SET data = %s WHERE kind = '_docstore' AND name = 'schema'").format(
                sql.Identifier(store.schema)
            ),
            [json.dumps({"ddl_version": RELEASE + 1, "release": "9.1.0"})],
        )
        before = dump(conn, store.schema)
        with DocStore.connect(docstore_dsn, schema=store.schema, kinds=registry(), max_size=2) as old:
            newer = (
                rf"at DDL version {RELEASE + 1}, newer than this docstore release knows "
                rf"\(DDL version {RELEASE}\)"
            )
            install = r"Install docstore 9.1.0 or later"
            for write in (
                lambda: old.put("config", "a", {"v": 9}),
                lambda: old.append("chat", "s1", msgs("x")),
                lambda: old.delete("config", "a"),
                lambda: old.purge("config", ["a"]),
                lambda: old.init_schema(),
                lambda: old.migrate(),
            ):
                with pytest.raises(DDLVersionMismatch, match=f"{newer}.*{install}") as err:
                    write()
                assert (err.value.store_version, err.value.release_version) == (RELEASE + 1, RELEASE)
            with pytest.raises(DDLVersionMismatch, match=newer), old.transaction():
                old.put("config", "new", {"v": 1})
            assert old.get("config", "a").data == {"v": 1}  # reads go on
            assert dump(conn, store.schema) == before  # nothing written
        # Once per pool: a pool that found the store at its version checks no more.
        checks.clear()
        with DocStore.connect(docstore_dsn, schema=store.schema, kinds=registry(), max_size=2) as pool_store:
            conn.execute(
                sql.SQL(
                    "UPDATE {}.documents SET data = %s WHERE kind = '_docstore' AND name = 'schema'"
                ).format(sql.Identifier(store.schema)),
                [json.dumps({"ddl_version": RELEASE})],
            )
            for i in range(3):
                pool_store.put("config", f"n{i}", {"v": i})
            assert len(checks) == 1
            again = DocStore(pool_store.pool, schema=store.schema, kinds=registry())
            again.put("config", "n9", {"v": 9})
            assert len(checks) == 1


def test_a_step_that_stops_writes_runs_only_when_confirmed(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rewrite(s: _sql.Statements) -> Plan[None]:
        yield Stmt(s("ALTER TABLE {s}.documents ALTER COLUMN schema_version SET DEFAULT 1"))

    step = _ddl.Step(
        RELEASE, "rewrite", "a table rewritten", "documents, while it lasts", run=rewrite, online=False
    )
    monkeypatch.setattr(_ddl, "STEPS", (*_ddl.STEPS, step))  # adding a step is one entry
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        store = old_store(LAYOUTS[0], docstore_factory, conn)
        with pytest.raises(DocStoreError, match=r"steps that stop writes while they run \(rewrite\).*--yes"):
            store.init_schema()
        assert record(conn, store.schema) == {"ddl_version": 1}
        plan = store.migrate(dry_run=True)
        assert [(s.name, s.online) for s in plan.steps][-2:] == [("rewrite", False), ("views", True)]
        assert store.migrate(offline_ok=True).steps == plan.steps
        assert record(conn, store.schema)["ddl_version"] == RELEASE


def test_a_first_release_role_that_wrote_the_heads_writes_after_the_upgrade(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        store = old_store(LAYOUTS[0], docstore_factory, conn)
        role = sql.Identifier(f"docstore_app_{os.getpid()}_{time.monotonic_ns() % 10**9}")
        s = sql.Identifier(store.schema)
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        try:
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, role))
            conn.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.documents, {s}.versions TO {r}").format(
                    s=s, r=role
                )
            )
            store.init_schema()
            dsn = psycopg.conninfo.make_conninfo(docstore_dsn, user=role.as_string(None).strip('"'))
            with DocStore.connect(dsn, schema=store.schema, kinds=registry(), max_size=1) as app:
                cursor = app.change_cursor()
                assert app.put("config", "a", {"v": 5}).version == 4
                feed = app.changes(after=cursor, poll_interval=0.05)
                assert next(feed).name == "a"
                feed.close()  # type: ignore[attr-defined]
        finally:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
                [role.as_string(None).strip('"')],
            )
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
            conn.execute(sql.SQL("DROP ROLE {}").format(role))


_MIGRATE_CHILD = textwrap.dedent("""
    import sys
    from docstore import DocStore

    dsn, schema = sys.argv[1], sys.argv[2]
    with DocStore.connect(dsn, schema=schema, min_size=1, max_size=1) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        store.migrate(progress=lambda line: print(line, flush=True))
        print("done", flush=True)
""")


@contextmanager
def migrations(dsn: str, schema: str, count: int) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` processes upgrading ``schema``, released at once; on leaving, those still
    running are killed, and each is waited for and its pipes closed."""
    with ExitStack() as stack:
        procs = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", _MIGRATE_CHILD, dsn, schema],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(count)
        ]

        @stack.callback  # runs before the Popens' own exits, which close the pipes and wait
        def kill_those_running() -> None:
            for p in procs:
                if p.poll() is None:
                    p.kill()

        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        yield procs


def wait_for(conn: psycopg.Connection[Any], query: str, params: list[Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(query, params).fetchone()
        if row is not None and row[0]:
            return row[0]
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {query}")


# A build of one of the schema's indexes, by the backend running it.
_BUILDING = """
SELECT p.pid FROM pg_stat_progress_create_index p
JOIN pg_class c ON c.oid = p.index_relid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname LIKE %s
"""


@pytest.fixture
def blocker(docstore_dsn: str) -> Iterator[Callable[[str], None]]:
    """block(table): a transaction that holds a writer's lock on ``table`` until the
    test ends, or until block("") lets go: an index build CONCURRENTLY waits for it."""
    conn = psycopg.connect(docstore_dsn)

    def block(table: str) -> None:
        if table:
            conn.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
        else:
            conn.rollback()

    try:
        yield block
    finally:
        conn.close()


@pytest.mark.servers
def test_an_upgrade_killed_mid_step_goes_on_where_it_stopped_when_run_again(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, blocker: Callable[[str], None]
) -> None:
    layout = LAYOUTS[0]
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        store = old_store(layout, docstore_factory, conn)
        rows_before = dump(conn, store.schema)
        blocker(f'"{store.schema}".versions')
        with migrations(docstore_dsn, store.schema, 1) as (proc,):
            assert proc.stdout is not None
            while "building CONCURRENTLY" not in proc.stdout.readline():
                pass
            backend = wait_for(conn, _BUILDING, [store.schema, "versions_key_document_idx"])
            os.kill(proc.pid, signal.SIGKILL)  # kill -9, mid-build: the first step had committed
            proc.wait(timeout=10)
        assert record(conn, store.schema) == {
            "ddl_version": 1,
            "upgrade": {"to": 2, "done": ["changes_table"]},
        }
        # Its backend goes on waiting for the blocker; a server that lost the connection
        # ends it (here, at once), leaving the index half made: invalid.
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", [backend])
        blocker("")
        valid = conn.execute(
            sql.SQL("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass"),
            [f'"{store.schema}".versions_key_document_idx'],
        ).fetchone()
        assert valid == (False,)

        said: list[str] = []
        again = store.migrate(progress=said.append)
        assert [s.name for s in again.steps] == [
            "key_document_index",
            "key_age_index",
            "lz4",
            "messages_view_kept",
            "views",
        ]
        assert any("invalid index left by a build cut short" in line for line in said), said
        assert catalog(conn, store.schema) == expected_catalog(layout, docstore_factory, conn)
        assert record(conn, store.schema)["ddl_version"] == RELEASE
        assert dump(conn, store.schema) == {**rows_before, "changes": []}


@pytest.mark.servers
def test_two_processes_upgrading_at_once_both_finish_and_build_each_index_once(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, blocker: Callable[[str], None]
) -> None:
    layout = LAYOUTS[3]  # partitioned: each partition's index is built, then attached
    assert layout.partitions
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        store = old_store(layout, docstore_factory, conn)
        rows_before = dump(conn, store.schema)
        # Both reach the first index build while it waits: one builds, the other waits for it.
        blocker(f'"{store.schema}".versions_p0')
        with migrations(docstore_dsn, store.schema, 2) as procs:
            wait_for(conn, _BUILDING, [store.schema, "versions_p0_key_document_idx"])
            time.sleep(0.3)
            blocker("")
            for p in procs:
                out, err = p.communicate(timeout=60)
                assert p.returncode == 0 and out.strip().endswith("done"), err
                assert "invalid index" not in out, out + err  # neither undid the other's build
        assert catalog(conn, store.schema) == expected_catalog(layout, docstore_factory, conn)
        assert record(conn, store.schema)["ddl_version"] == RELEASE
        assert dump(conn, store.schema) == rows_before


@pytest.fixture
def store(docstore_factory: Callable[..., DocStore], docstore_dsn: str) -> DocStore:
    """A filled store of the first release's layout: the CLI's (``run``) store here."""
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        return old_store(LAYOUTS[0], docstore_factory, conn)


def test_docstore_status_and_migrate_show_both_versions_and_dry_run_changes_nothing(
    run: Run, store: DocStore, docstore_dsn: str
) -> None:
    code, out, _ = run("status")
    assert code == 0 and f"DDL version 1 (this docstore writes {RELEASE}: run `docstore migrate`)" in out
    code, out, _ = run("status", "--json")
    report = json.loads(out)
    assert (report["ddl_version"], report["release_ddl_version"]) == (1, RELEASE)

    code, out, _ = run("migrate", "--dry-run")
    assert code == 0, out
    assert f"DDL version 1, this docstore writes {RELEASE}" in out and "dry run: nothing was changed" in out
    for name in [*(step.name for step in _ddl.STEPS), _ddl.VIEWS.name]:
        assert f" {name}: " in out
    assert "note: documents_data_gin_idx is kept" in out
    code, out, _ = run("migrate", "--dry-run", "--json")
    plan = json.loads(out)
    assert (plan["store_ddl_version"], plan["release_ddl_version"], plan["ddl_version"]) == (1, RELEASE, 1)
    assert [s["name"] for s in plan["steps"]][-1] == "views" and plan["dry_run"] is True
    with psycopg.connect(docstore_dsn) as conn:
        assert record(conn, store.schema) == {"ddl_version": 1}

    code, out, err = run("migrate")
    assert code == 0, err
    assert f"schema {store.schema!r} is at DDL version {RELEASE}" in out
    code, out, _ = run("status", "--json")
    assert json.loads(out)["ddl_version"] == RELEASE
    code, out, _ = run("migrate")
    assert code == 0 and "nothing to do" in out
    code, out, _ = run("migrate", "--partitions", "2", "--dry-run")
    assert code == 0 and " partition_copy: " in out and layout_of(store) == ("r", 0)
    code, out, err = run("migrate", "--partitions", "2")
    assert code == 0 and "partition_swap" in out and layout_of(store) == ("p", 2), err


def test_docstore_migrate_asks_before_a_step_that_stops_writes(
    run: Run, store: DocStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = _ddl.Step(RELEASE, "rewrite", "a table rewritten", "documents, while it lasts", online=False)
    monkeypatch.setattr(_ddl, "STEPS", (*_ddl.STEPS, step))
    code, out, err = run("migrate")
    assert code == 1 and "rewrite [STOPS WRITES]" in out and "run again with --yes" in err
    code, out, _ = run("migrate", "--dry-run")
    assert code == 0  # a dry run asks nothing
    code, out, err = run("migrate", "--yes")
    assert code == 0, err
    assert store.migrate().steps == ()


@pytest.mark.servers
def test_an_upgrade_through_pgbouncer_in_transaction_mode_then_writes_through_it(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    # No session state is kept across its statements: each step's lock and lock_timeout
    # live in the step's transaction, each index build is one statement.
    layout = LAYOUTS[3]
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        store = old_store(layout, docstore_factory, conn)
        rows_before = dump(conn, store.schema)
        with PgBouncer(5432, pool_mode="transaction", pool_size=2) as bouncer:
            dsn = bouncer.dsn(str(conninfo_to_dict(docstore_dsn)["dbname"]))
            with DocStore.connect(dsn, schema=store.schema, kinds=registry(), prepare_threshold=None) as via:
                assert via.init_schema(partitions=layout.partitions) == RELEASE
                assert via.append("chat", "s1", msgs("through the pooler")) == 4
        assert catalog(conn, store.schema) == expected_catalog(layout, docstore_factory, conn)
        after = dump(conn, store.schema)
        assert (
            after["documents"] != rows_before["documents"]
            and len(after["versions"]) == len(rows_before["versions"]) + 1
        )


def test_a_plain_store_moves_into_hash_partitions_online_while_a_writer_appends(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = docstore_factory(kinds=registry())
    # The agents layer's messages view, on versions too: it follows the move.
    StorageManager(store).init_db()
    fill(store)
    monkeypatch.setattr(_partition, "COPY_BATCH", 7)  # several batches, and a cut between two
    written: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        with DocStore.connect(docstore_dsn, schema=store.schema, kinds=registry(), max_size=1) as other:
            while not stop.is_set():
                written.append(other.append("chat", "busy", msgs("x")))

    # An index of the user's own on versions (docs/performance.md's), carried over.
    gin = "CREATE INDEX versions_data_gin_idx ON {}.versions USING gin (data jsonb_path_ops)"
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(gin).format(sql.Identifier(store.schema)))
        rows_before = dump(conn, store.schema)
        thread = threading.Thread(target=writer)
        thread.start()
        try:

            def cut(line: str) -> None:
                if "rows copied" in line:
                    raise KeyboardInterrupt  # the process stops mid-copy

            with pytest.raises(KeyboardInterrupt):
                store.migrate(partitions=4, progress=cut)
            assert record(conn, store.schema)["partitioning"]["to"] == 4
            plan = store.migrate(partitions=4, dry_run=True)
            assert [s.name for s in plan.steps] == [s.name for s in _partition._STEPS]
            said: list[str] = []
            store.migrate(partitions=4, progress=said.append)
            time.sleep(0.1)
        finally:
            stop.set()
            thread.join()
        assert written and written == list(range(1, len(written) + 1))  # every append landed once
        made = docstore_factory(partitions=4)
        StorageManager(made).init_db()
        fresh = made.schema
        conn.execute(sql.SQL(gin).format(sql.Identifier(fresh)))
        assert catalog(conn, store.schema) == catalog(conn, fresh)
        after = dump(conn, store.schema)
        busy = [r for r in after["versions"] if r[1] == "busy"]
        assert [r[2] for r in busy] == written
        assert [r for r in after["versions"] if r[1] != "busy"] == rows_before["versions"]
        assert record(conn, store.schema) == {"ddl_version": RELEASE, "release": _ddl.release_name()}
        assert store.migrate(partitions=4).steps == ()
        assert store.init_schema(partitions=4) == RELEASE
        store.purge("chat", ["busy"])
        exercise(store, conn)
