"""docstore.testing's kept schemas: a store given back is emptied to exactly what a new
one holds, or dropped when its test changed the DDL, and no test sees another's rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from docstore import AsyncDocStore, DocStore, DocStoreError
from docstore.agents import StorageManager
from docstore.testing import SchemaPool, _emptying

PARTITIONS = 4


@pytest.fixture
def schemas(docstore_pool: ConnectionPool[Any]) -> Iterator[SchemaPool]:
    """A pool of its own, so that its counts are this test's alone."""
    pool = SchemaPool(docstore_pool)
    try:
        yield pool
    finally:
        pool.close()


def _tables(conn: psycopg.Connection[Any], schema: str, *, partitions: bool = True) -> list[str]:
    """Every table of ``schema``, read from the catalog (a table added to schema.sql is here)."""
    rows = conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind IN ('r', 'p')"
        " AND (%s OR NOT relispartition) ORDER BY 1",
        [sql.Identifier(schema).as_string(conn), partitions],
    ).fetchall()
    return [str(name) for (name,) in rows]


def _state(pool: ConnectionPool[Any], schema: str) -> dict[str, Any]:
    with pool.connection() as conn:
        return _state_on(conn, schema)


def _state_on(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """Every row of every table and the state of every sequence of ``schema``."""
    state: dict[str, Any] = {}
    rows = "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM {} t"
    for table in _tables(conn, schema):
        state[table] = conn.execute(sql.SQL(rows).format(sql.Identifier(schema, table))).fetchone()
    sequences = conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'S'",
        [sql.Identifier(schema).as_string(conn)],
    ).fetchall()
    for (sequence,) in sequences:
        query = sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(schema, sequence))
        state[f"sequence {sequence}"] = conn.execute(query).fetchone()
    return state


def _write_everything(store: DocStore) -> None:
    """A write to every table: heads, versions, change rows, an idempotency key, the feed's
    horizon, a log and a tombstone."""
    store.register("cfg", dict)
    store.register("chat", dict, mode="log")
    store.put("cfg", "a", {"n": 1})
    store.prune_changes(older_than=datetime.now(UTC) + timedelta(days=1))  # the horizon row
    store.put("cfg", "a", {"n": 2}, idempotency_key="k-1")
    store.put("cfg", "b", {"n": 1})
    store.delete("cfg", "b")
    store.append("chat", "c", [{"m": 1}, {"m": 2}])


@pytest.mark.parametrize("partitions", [None, PARTITIONS], ids=["plain", "partitioned"])
def test_a_store_given_back_holds_exactly_what_it_held_when_made(
    schemas: SchemaPool, partitions: int | None
) -> None:
    schema = schemas.take(partitions)
    made = _state(schemas.pool, schema)
    _write_everything(DocStore(schemas.pool, schema=schema))
    written = _state(schemas.pool, schema)
    with schemas.pool.connection() as conn:
        tables = _tables(conn, schema, partitions=False)
    assert {"documents", "versions", "changes"} <= set(tables)
    # The writes reach every table and sequence there is: one this test does not write
    # would prove nothing about the emptying of it.
    assert [t for t in tables if written[t] == made[t]] == []
    assert [k for k in made if k.startswith("sequence") and written[k] == made[k]] == []

    schemas.give_back(schema)
    again = schemas.take(partitions)
    assert (schemas.made, schemas.emptied, schemas.dropped) == (1, 1, 0)
    assert again != schema  # kept under a new name: each test sees a name of its own
    assert _state(schemas.pool, again) == made
    store = DocStore(schemas.pool, schema=again)
    store.register("cfg", dict)
    assert store.list("cfg") == []
    with schemas.pool.connection() as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
    assert found is None


def test_an_emptying_that_missed_a_table_or_a_sequence_would_fail_the_test_above(schemas: SchemaPool) -> None:
    """The check above can fail: left out of the emptying, each table and sequence the
    catalog lists shows in the state it compares."""
    kept = schemas._kept[schemas.take()]
    partial = [
        replace(
            kept,
            tables=[t for t in kept.tables if t != left],
            rows={t: rows for t, rows in kept.rows.items() if t != left},
        )
        for left in kept.tables
    ]
    partial += [replace(kept, sequences=[s for s in kept.sequences if s != left]) for left in kept.sequences]
    assert len(partial) >= 4  # documents, versions, changes and the changes' sequence
    for emptying in [kept, *partial]:
        schema = next(name for name, k in schemas._kept.items() if k is kept)
        made = _state(schemas.pool, schema)
        _write_everything(DocStore(schemas.pool, schema=schema))
        with schemas.pool.connection() as conn:
            conn.execute("BEGIN")
            conn.execute(_emptying(schema, "t_renamed", emptying, truncate=False))
            state = _state_on(conn, "t_renamed")
            conn.execute("ROLLBACK")  # (a sequence's setval stays: the give_back resets it)
        assert (state == made) is (emptying is kept)
        schemas.give_back(schema)
        assert schemas.take() in schemas._kept


def _index(store: DocStore, conn: psycopg.Connection[Any]) -> None:
    store.register("cfg", dict)
    store.create_index("cfg")


def _ddl(statement: str) -> Callable[[DocStore, psycopg.Connection[Any]], None]:
    def run(store: DocStore, conn: psycopg.Connection[Any]) -> None:
        conn.execute(statement.replace("S.", sql.Identifier(store.schema).as_string(conn) + "."))

    return run


def _agents_view(store: DocStore, conn: psycopg.Connection[Any]) -> None:
    StorageManager(store).init_db()


def _drop_schema(store: DocStore, conn: psycopg.Connection[Any]) -> None:
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(store.schema)))


def _schema_grant(store: DocStore, conn: psycopg.Connection[Any]) -> None:
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(sql.Identifier(store.schema)))


CHANGES = [
    pytest.param(_index, id="create_index"),
    pytest.param(_agents_view, id="agents-init_db"),
    pytest.param(_ddl("CREATE TABLE S.mine (a int)"), id="a-table"),
    pytest.param(_ddl("CREATE FUNCTION S.f() RETURNS int LANGUAGE sql AS 'SELECT 1'"), id="a-function"),
    pytest.param(_ddl("ALTER TABLE S.documents ADD COLUMN extra int"), id="a-column"),
    pytest.param(_ddl("ALTER TABLE S.versions ALTER COLUMN author SET STATISTICS 5"), id="a-column-setting"),
    pytest.param(_ddl("GRANT SELECT ON S.documents TO PUBLIC"), id="a-grant"),
    pytest.param(_ddl("ANALYZE S.versions"), id="statistics"),
    pytest.param(_ddl("VACUUM S.documents"), id="vacuum"),
    pytest.param(_ddl("CREATE VIEW S.mine AS SELECT 1 AS one"), id="a-view"),
    pytest.param(_ddl("ALTER VIEW S.current_documents SET (security_barrier = false)"), id="a-view-option"),
    pytest.param(_ddl("ALTER SEQUENCE S.changes_seq_seq INCREMENT BY 2"), id="a-sequence"),
    pytest.param(_ddl("ALTER TABLE S.changes ENABLE ROW LEVEL SECURITY"), id="row-security"),
    pytest.param(_ddl("COMMENT ON TABLE S.documents IS 'mine'"), id="a-comment"),
    pytest.param(_ddl("DROP VIEW S.config_changes"), id="a-view-dropped"),
    pytest.param(_schema_grant, id="a-grant-on-the-schema"),
    pytest.param(_drop_schema, id="the-schema-dropped"),
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_store_whose_ddl_a_test_changed_is_dropped_not_kept(
    schemas: SchemaPool, change: Callable[[DocStore, psycopg.Connection[Any]], None]
) -> None:
    schema = schemas.take()
    store = DocStore(schemas.pool, schema=schema)
    with schemas.pool.connection() as conn:
        change(store, conn)
    schemas.give_back(schema)
    assert (schemas.made, schemas.emptied, schemas.dropped) == (1, 0, 1)
    with schemas.pool.connection() as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone() is None
    new = schemas.take()
    assert schemas.made == 2 and new != schema
    assert DocStore(schemas.pool, schema=new).init_schema() >= 1


def test_a_store_past_the_delete_limit_is_truncated_and_kept(schemas: SchemaPool) -> None:
    schema = schemas.take()
    made = _state(schemas.pool, schema)
    store = DocStore(schemas.pool, schema=schema)
    store.register("cfg", dict)
    store.put_many("cfg", {f"d{i}": {"text": f"{i} " * 20_000} for i in range(30)})  # ~2 MB, some TOASTed
    schemas.give_back(schema)
    again = schemas.take()
    assert (schemas.made, schemas.emptied, schemas.dropped) == (1, 1, 0)
    assert _state(schemas.pool, again) == made
    # TRUNCATE gave the tables new files (new catalog rows): the next test's store is
    # compared with the catalog as the emptying left it, so it is kept again.
    small = DocStore(schemas.pool, schema=again)
    small.register("cfg", dict)
    small.put("cfg", "a", {"n": 1})
    schemas.give_back(again)
    assert (schemas.made, schemas.emptied, schemas.dropped) == (1, 2, 0)


def test_fresh_makes_a_new_store_and_drops_it(schemas: SchemaPool) -> None:
    kept = schemas.take()
    schemas.give_back(kept)
    fresh = schemas.take(fresh=True)
    assert fresh not in (kept, schemas.take())
    schemas.give_back(fresh)
    assert (schemas.made, schemas.dropped) == (2, 1)
    with schemas.pool.connection() as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [fresh]).fetchone() is None


def test_a_statement_of_an_earlier_test_fails_instead_of_writing_into_the_next(schemas: SchemaPool) -> None:
    schema = schemas.take()
    late = DocStore(schemas.pool, schema=schema)
    late.register("cfg", dict)
    late.put("cfg", "a", {"n": 1})
    schemas.give_back(schema)
    nxt = schemas.take()
    with pytest.raises(DocStoreError, match=r"missing from schema"):
        late.put("cfg", "b", {"n": 2})
    assert _state(schemas.pool, nxt)["versions"] == ([],)


def test_a_transaction_a_test_left_open_costs_the_schema_not_the_session(schemas: SchemaPool) -> None:
    schemas.lock_timeout = 0.2
    schema = schemas.take()
    store = DocStore(schemas.pool, schema=schema)
    store.register("cfg", dict)
    with psycopg.connect(str(schemas.pool.conninfo)) as leaked:  # a transaction left open
        leaked.execute(
            sql.SQL("INSERT INTO {} (kind, name, version, data) VALUES ('cfg', 'late', 1, '{{}}')").format(
                sql.Identifier(schema, "documents")
            )
        )
        schemas.give_back(schema)  # waits lock_timeout, then leaves the schema
        assert (schemas.emptied, schemas.dropped) == (0, 0)
        leaked.commit()  # the row lands in a schema no test will get
    new = schemas.take()
    assert new != schema and schemas.made == 2
    assert _state(schemas.pool, new)["documents"] != _state(schemas.pool, schema)["documents"]


# Two tests that run one after the other on one worker (the suite runs a module on one):
# each finds the stores empty, then writes; whichever runs second finds the first's
# schemas emptied, under other names.
@pytest.mark.parametrize("turn", ["first", "second"])
async def test_no_test_sees_the_rows_of_one_before(
    turn: str,
    docstore_store: DocStore,
    docstore_async_store: AsyncDocStore,
    docstore_factory: Callable[..., DocStore],
) -> None:
    parted = docstore_factory(partitions=PARTITIONS)
    for store in (docstore_store, parted):
        store.register("cfg", dict)
        assert store.list("cfg") == []
        assert _state(store.pool, store.schema)["changes"] == ([],)
        store.put("cfg", turn, {"turn": turn})
    docstore_async_store.register("cfg", dict)
    assert await docstore_async_store.list("cfg") == []
    await docstore_async_store.put("cfg", turn, {"turn": turn})
