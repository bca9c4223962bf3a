"""A schema name only ever names a schema: through DocStore, `docstore --schema` and
AURITE_DB_SCHEMA, a hostile one is either held as an odd name or refused before any SQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from pydantic import BaseModel

from docstore import DocStore
from docstore.agents import StorageManager
from docstore.cli import main


class AnyDoc(BaseModel):
    v: int


@pytest.fixture
def victim(docstore_dsn: str) -> Iterator[str]:
    """A table in public that a hostile schema name must never touch."""
    table = "i13_victim"
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS public.{table} (x int)")
    yield table
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()
        assert found is not None and found[0], "the hostile schema name dropped a table"
        conn.execute(f"DROP TABLE public.{table}")


COMMENT_BREAKERS = [
    "\nDROP TABLE IF EXISTS public.i13_victim;\n--",
    "\rDROP TABLE IF EXISTS public.i13_victim;\r--",
    "x\u2028y",
    "tab\there",
]
PARAM_BREAKERS = ["x%s", "x%(kind)s", "50%"]


@pytest.mark.parametrize("schema", COMMENT_BREAKERS + PARAM_BREAKERS)
def test_a_schema_name_that_could_break_out_is_refused_before_any_sql(
    schema: str, victim: str, docstore_dsn: str
) -> None:
    with pytest.raises(ValueError, match="schema name") as err:
        DocStore.connect(docstore_dsn, schema=schema)
    assert "schema name" in str(err.value)


def test_a_name_longer_than_postgresql_keeps_is_refused(docstore_dsn: str) -> None:
    # 21 three-byte characters: 21 characters but 63 bytes is fine, 22 is 66 bytes, which
    # PostgreSQL would cut to another schema's name.
    with pytest.raises(ValueError, match="keeps 63"):
        DocStore.connect(docstore_dsn, schema="é" * 22 + "x" * 20)


def test_the_cli_refuses_a_hostile_schema_before_any_sql(
    victim: str, docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["--dsn", docstore_dsn, "--schema", COMMENT_BREAKERS[0], "init"])
    assert code != 0
    assert "schema name" in capfd.readouterr().err


def test_aurite_db_schema_is_refused_before_any_sql(victim: str, docstore_dsn: str) -> None:
    env = {"AURITE_ENABLE_DB": "1", "AURITE_DB_URL": docstore_dsn, "AURITE_DB_SCHEMA": COMMENT_BREAKERS[0]}
    with pytest.raises(ValueError, match="schema name"):
        StorageManager.from_env(environ=env)


@pytest.mark.parametrize(
    "odd", ["x{after}", "x{s}y", "x{where}", ':"schema"', ":'schema'", 'q"; DROP TABLE public.i13_victim; --']
)
def test_braces_and_placeholders_in_a_schema_name_are_only_an_odd_name(
    odd: str, victim: str, docstore_factory: Callable[..., DocStore]
) -> None:
    plain = docstore_factory()
    plain.register("doc", AnyDoc)
    plain.put("doc", "a", {"v": 1})
    base = odd.replace("{after}", "").replace("{where}", "")
    store = docstore_factory(schema=plain.schema + "_" + odd if base != odd else odd)
    store.register("doc", AnyDoc)
    assert store.list("doc") == []
    store.put("doc", "b", {"v": 2})
    assert [d.name for d in store.list("doc")] == ["b"]
    assert [d.name for d in plain.list("doc")] == ["a"]
    assert _count(store, store.schema) == 1


def _count(store: DocStore, schema: str) -> int:
    with store.pool.connection() as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.documents WHERE kind = 'doc'").format(sql.Identifier(schema))
        ).fetchone()
    assert row is not None
    return int(row[0])
