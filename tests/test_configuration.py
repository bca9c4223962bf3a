"""One configuration story (issue 17): the library, the command and the fixtures read the
same variables, and docs/configuration.md lists every variable the code reads."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from docstore import AsyncDocStore, DocStore
from docstore.cli import main

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


def _documented() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z_]+)`", row.split("|")[1])}


def test_the_table_lists_every_variable_the_code_reads_and_no_other() -> None:
    read = set()
    for path in (ROOT / "docstore").rglob("*.py"):
        read |= set(re.findall(r"[\"']((?:DOCSTORE|AURITE)_[A-Z_]+)[\"']", path.read_text()))
    documented = _documented()
    assert read and read <= documented, read - documented
    assert {v for v in documented if not v.startswith("PG")} == read
    for page in ("README.md", "docs/cli.md", "docs/api.md", "docs/testing.md"):
        assert "configuration.md" in (ROOT / page).read_text(encoding="utf-8"), page


@pytest.fixture
def schema_env(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore], monkeypatch: pytest.MonkeyPatch
) -> str:
    schema: str = docstore_factory().schema
    monkeypatch.setenv("DOCSTORE_URL", docstore_dsn)
    monkeypatch.setenv("DOCSTORE_SCHEMA", schema)
    return schema


def test_connect_reads_docstore_schema(schema_env: str) -> None:
    with DocStore.connect() as store:
        assert store.schema == schema_env
        store.register("note", dict)
        store.put("note", "n", {"x": 1})
    with DocStore.connect(schema="explicit_wins") as store:
        assert store.schema == "explicit_wins"


async def test_async_connect_reads_docstore_schema(schema_env: str) -> None:
    async with await AsyncDocStore.connect() as store:
        assert store.schema == schema_env


def test_the_command_reads_the_same_variables(schema_env: str, capfd: pytest.CaptureFixture[str]) -> None:
    with DocStore.connect() as store:
        store.register("note", dict)
        store.put("note", "n", {"x": 1})
    capfd.readouterr()
    assert main(["--json", "status"]) == 0
    report = json.loads(capfd.readouterr().out)
    assert report["schema"] == schema_env and [k["kind"] for k in report["kinds"]] == ["note"]


@pytest.mark.parametrize("how", ["DOCSTORE_URL", "PG*"])
def test_the_fixtures_use_the_server_the_library_is_configured_for(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, docstore_dsn: str, how: str
) -> None:
    # The user `root` (not the fixtures' default `postgres`) tells which settings were used.
    monkeypatch.delenv("DOCSTORE_TEST_URL", raising=False)
    if how == "DOCSTORE_URL":
        monkeypatch.setenv("DOCSTORE_URL", "postgresql://root@127.0.0.1:5432/root")
    else:
        monkeypatch.delenv("DOCSTORE_URL", raising=False)
        for var, value in (("PGHOST", "127.0.0.1"), ("PGUSER", "root"), ("PGDATABASE", "root")):
            monkeypatch.setenv(var, value)
    pytester.makepyfile(
        test_where="""
        import psycopg

        def test_on_the_configured_server(docstore_dsn, docstore_store):
            with psycopg.connect(docstore_dsn) as conn:
                assert conn.info.user == "root"
                assert conn.info.dbname.startswith("docstore_test_")
            docstore_store.register("note", dict)
            assert docstore_store.put("note", "n", {}).version == 1
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
