"""One configuration story (issue 17): the library, the command and the fixtures read the
same variables, and docs/configuration.md lists every variable the code reads."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from docstore import AsyncDocStore, DocStore
from docstore._connect import PG_VARS
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
@pytest.mark.servers
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


# --- issue 28, item 4: the command honours the framework's variables too ----------------

_WHERE_VARIABLES = (
    "DOCSTORE_URL",
    "DOCSTORE_SCHEMA",
    "PGPASSWORD",
    *PG_VARS,
    "AURITE_DB_URL",
    "AURITE_DB_HOST",
    "AURITE_DB_PORT",
    "AURITE_DB_USER",
    "AURITE_DB_PASSWORD",
    "AURITE_DB_NAME",
    "AURITE_DB_SCHEMA",
    "AURITE_ENABLE_DB",
)


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable that says where a server or a schema is."""
    for var in _WHERE_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _status(capfd: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capfd.readouterr()
    code = main(["--json", *args, "status"])
    out, err = capfd.readouterr()
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def test_the_command_reads_the_frameworks_variables_in_the_documented_order(
    bare_env: pytest.MonkeyPatch,
    docstore_dsn: str,
    docstore_factory: Callable[..., DocStore],
    capfd: pytest.CaptureFixture[str],
) -> None:
    store = docstore_factory()
    store.register("note", dict)
    store.put("note", "n", {})
    parts = conninfo_to_dict(docstore_dsn)
    where = f"{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    refused = make_conninfo(docstore_dsn, port="1")  # nothing listens there

    # AURITE_DB_* alone, as StorageManager.from_env() reads them (PG* comes after them).
    for var, key in (("HOST", "host"), ("PORT", "port"), ("USER", "user"), ("NAME", "dbname")):
        bare_env.setenv(f"AURITE_DB_{var}", str(parts[key]))
    bare_env.setenv("AURITE_DB_SCHEMA", store.schema)
    bare_env.setenv("PGHOST", "/nonexistent")
    report = _status(capfd)
    assert (report["database"], report["server_from"]) == (
        where,
        "AURITE_DB_HOST, AURITE_DB_PORT, AURITE_DB_USER, AURITE_DB_NAME",
    )
    assert (report["schema"], report["schema_from"]) == (store.schema, "AURITE_DB_SCHEMA")
    assert [k["kind"] for k in report["kinds"]] == ["note"]
    bare_env.setenv("AURITE_DB_URL", docstore_dsn)  # the URL before its parts
    assert _status(capfd)["server_from"] == "AURITE_DB_URL"

    # DOCSTORE_URL and DOCSTORE_SCHEMA before them.
    bare_env.setenv("AURITE_DB_URL", refused)
    bare_env.setenv("AURITE_DB_SCHEMA", "elsewhere")
    bare_env.setenv("DOCSTORE_URL", docstore_dsn)
    bare_env.setenv("DOCSTORE_SCHEMA", store.schema)
    report = _status(capfd)
    assert (report["server_from"], report["schema_from"]) == ("DOCSTORE_URL", "DOCSTORE_SCHEMA")

    # --dsn and --schema before everything.
    bare_env.setenv("DOCSTORE_URL", refused)
    bare_env.setenv("DOCSTORE_SCHEMA", "elsewhere")
    report = _status(capfd, "--dsn", docstore_dsn, "--schema", store.schema)
    assert (report["server_from"], report["schema_from"]) == ("--dsn", "--schema")
    assert [k["kind"] for k in report["kinds"]] == ["note"]
    capfd.readouterr()
    assert main(["status"]) == 1
    assert "cannot connect" in capfd.readouterr().err


def test_a_failure_says_which_variable_chose_the_server_and_no_password(
    bare_env: pytest.MonkeyPatch, docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    parts = conninfo_to_dict(docstore_dsn)
    bare_env.setenv("AURITE_DB_URL", make_conninfo(docstore_dsn, port="1", password="hunter2secret"))
    capfd.readouterr()
    assert main(["status"]) == 1
    out, err = capfd.readouterr()
    assert err.startswith(f"docstore: error: cannot connect to PostgreSQL at {parts['user']}@")
    assert "(server from AURITE_DB_URL)" in err and "hunter2secret" not in out + err
    bare_env.delenv("AURITE_DB_URL")
    for var, value in (("HOST", parts["host"]), ("PORT", "1"), ("PASSWORD", "hunter2secret")):
        bare_env.setenv(f"AURITE_DB_{var}", str(value))
    assert main(["status"]) == 1
    out, err = capfd.readouterr()
    # The framework's own rule: its user and database are needed.
    assert "AURITE_DB_USER and AURITE_DB_NAME are not set" in err and "hunter2secret" not in out + err


@pytest.mark.parametrize("command", [["status"], ["get", "agent", "a"], ["--json", "ls", "agent"]])
def test_tables_missing_says_where_and_the_command_to_run_never_a_python_call(
    bare_env: pytest.MonkeyPatch, docstore_dsn: str, capfd: pytest.CaptureFixture[str], command: list[str]
) -> None:
    parts = conninfo_to_dict(docstore_dsn)
    where = f"{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    bare_env.setenv("DOCSTORE_URL", docstore_dsn)
    capfd.readouterr()
    assert main(["--schema", "no_such_schema", *command]) == 1
    out, err = capfd.readouterr()
    assert out == "" and err.count("\n") == 1
    message = json.loads(err)["error"]["message"] if "--json" in command else err
    assert (
        "docstore's tables are missing from schema 'no_such_schema' (from --schema) in "
        f"{where} (from DOCSTORE_URL): run `docstore init` with the same --schema to create them"
    ) in message
    assert "init_schema" not in err and "store." not in err and "()" not in err
    if "--json" in command:
        assert json.loads(err)["error"]["type"] == "SchemaMissing"


def test_with_nothing_configured_the_command_says_so_and_which_defaults_libpq_used(
    bare_env: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # Whether libpq's defaults reach a server on this machine or not, the message says
    # that nothing was configured and what libpq chose: the OS user, its database, the socket.
    user = getpass.getuser()
    capfd.readouterr()
    assert main(["--schema", "no_such_schema", "status"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    assert (
        "nothing was configured (no --dsn, DOCSTORE_URL, AURITE_DB_* or PG* variable), so libpq "
        f"used its defaults (user {user}, database {user}, "
    ) in err
    assert "Unix socket" in err and "localhost:5432/" not in err and "init_schema" not in err
