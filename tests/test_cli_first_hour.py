"""The first hour of a new user with the `docstore` command (issue 17): typos in kinds,
errors a person can act on, help without noise, authors, --version, safe exports, and
names that cannot drive the terminal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Run

from docstore import DocStore
from docstore.cli import main

DOCSTORE = Path(sys.executable).parent / "docstore"


@pytest.fixture
def store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    return docstore_factory()


AGENT = '{"name": "weather"}'


# --- 1. a typo does not make a new kind -------------------------------------------------


def test_a_typo_in_a_kind_is_refused_with_the_nearest_known_kind(run: Run) -> None:
    code, out, err = run("put", "agnet", "weather", "-", stdin=AGENT)
    assert (code, out) == (1, "")
    assert "unknown kind 'agnet': did you mean 'agent'?" in err and "--new-kind" in err
    code, out, _ = run("--json", "status")
    assert [k["kind"] for k in json.loads(out)["kinds"]] == []  # nothing was written
    # Reading an unknown kind says the same, instead of "not found".
    code, _, err = run("get", "agnet", "weather")
    assert code == 1 and "did you mean 'agent'?" in err


def test_new_kind_writes_a_new_kind_and_then_it_is_known(run: Run) -> None:
    assert run("put", "widget", "w1", "-", stdin='{"colour": "blue"}')[0] == 1
    code, out, err = run("put", "widget", "w1", "-", "--new-kind", stdin='{"colour": "blue"}')
    assert (code, out) == (0, "widget 'w1': version 1\n"), err
    assert run("put", "widget", "w2", "-", stdin='{"colour": "red"}')[0] == 0
    # A typo of a kind that is only in the store is caught too.
    code, _, err = run("put", "widgte", "w3", "-", stdin="{}")
    assert code == 1 and "did you mean 'widget'?" in err


# --- 2. the demo's closing hint -------------------------------------------------------


def test_the_demos_closing_hint_is_one_runnable_command_per_line(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    schema = docstore_factory().schema
    capfd.readouterr()
    assert main(["--dsn", docstore_dsn, "--schema", schema, "demo"]) == 0
    out = capfd.readouterr().out
    hint = out[out.index("Explore it") :].splitlines()[1:]
    assert len(hint) == 4 and not any("|" in line for line in hint)
    for line in hint:
        words = line.split()
        assert words[:3] == ["docstore", "--schema", schema]
        # Each line runs as pasted (with the test's server in place of the default one).
        capfd.readouterr()
        assert main(["--dsn", docstore_dsn, *words[1:]]) == 0, capfd.readouterr().err


@pytest.mark.servers
def test_the_hint_names_the_command_as_it_was_started(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    # An unactivated venv: docstore is not on PATH, so the hint says .venv/bin/docstore.
    schema = docstore_factory().schema
    env = {"PATH": "/usr/bin:/bin", "DOCSTORE_URL": docstore_dsn}
    if "PYTHONPATH" in os.environ:  # the code under test, where a shared venv installs another
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run(
        [str(DOCSTORE), "--schema", schema, "demo"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    hint = done.stdout[done.stdout.index("Explore it") :].splitlines()[1:]
    assert hint and all(line.split()[0] == str(DOCSTORE) for line in hint)
    pasted = subprocess.run(["/bin/sh", "-c", hint[1]], env=env, capture_output=True, text=True, timeout=120)
    assert pasted.returncode == 0 and "weather" in pasted.stdout, pasted.stderr


# --- 3. errors a person can act on ----------------------------------------------------


def test_bad_json_on_stdin_gives_line_and_column(run: Run) -> None:
    code, out, err = run("put", "agent", "a", "-", stdin='{"name": "a",\n "model": }\n')
    assert (code, out) == (1, "")
    assert err.startswith("docstore: error: stdin: invalid JSON at line 2, column 11:")
    code, _, err = run("put", "agent", "a", "-", stdin="name: a\nmcp_servers: [x\nmodel: b\n")
    assert code == 1 and "stdin: neither JSON nor valid YAML at line 3" in err


def test_empty_stdin_says_it_is_empty(run: Run, tmp_path: Path) -> None:
    for text in ("", "  \n"):
        code, _, err = run("put", "agent", "a", "-", stdin=text)
        assert code == 1 and err.startswith("docstore: error: stdin is empty"), err
    (tmp_path / "empty.json").write_text("")
    code, _, err = run("put", "agent", "a", str(tmp_path / "empty.json"))
    assert code == 1 and f"{tmp_path / 'empty.json'} is empty" in err


def test_option_errors_name_the_option_and_exit_2(run: Run) -> None:
    code, _, err = run("prune", "agent", "--versions")
    assert code == 2 and "--versions needs --keep-last N" in err
    code, _, err = run("prune", "agent", "--keep-last", "-1")
    assert code == 2 and "'--keep-last'" in err and "keep_last" not in err
    code, _, err = run("prune", "agent", "--versions", "--keep-last", "0")
    assert code == 2 and "'--keep-last'" in err
    code, _, err = run("prune", "agent", "--older-than", "soon")
    assert code == 2 and "'--older-than'" in err and "older_than" not in err
    for where in ("[1]", "{nope", '{"$bogus": 1}'):
        code, _, err = run("ls", "agent", "--where", where)
        assert code == 2 and "'--where'" in err, (where, err)


def test_with_json_errors_are_json_on_stderr(run: Run) -> None:
    code, out, err = run("--json", "get", "agent", "missing")
    assert (code, out) == (1, "")
    assert json.loads(err) == {
        "error": {"type": "DocumentNotFound", "exit_status": 1, "message": "agent 'missing' not found"}
    }
    code, out, err = run("ls", "agent", "--where", "[1]", "--json")
    assert (code, out) == (2, "")
    error = json.loads(err)["error"]
    assert error["type"] == "UsageError" and "--where" in error["message"]
    code, _, err = run("--json", "put", "agent", "a", "-", stdin="")
    assert code == 1 and "is empty" in json.loads(err)["error"]["message"]


def test_an_import_conflict_names_each_document_once(run: Run, store: DocStore, tmp_path: Path) -> None:
    run("put", "agent", "support", "-", stdin='{"name": "support"}')
    export = tmp_path / "export.jsonl"
    assert run("export", "-o", str(export))[0] == 0
    with store.pool.connection() as conn:
        conn.execute(f'DROP SCHEMA "{store.schema}" CASCADE')
    run("init")
    run("put", "agent", "support", "-", stdin='{"name": "support", "max_iterations": 3}')
    # Its head and its version 1 both differ: one mention of the document, saying both.
    code, _, err = run("import", str(export))
    assert code == 1 and err.count("support") == 1, err
    assert "agent 'support' (its current document and version 1)" in err


# --- 4. help and options --------------------------------------------------------------


def test_help_shows_names_not_python_types(run: Run) -> None:
    for args in (
        [],
        ["put"],
        ["diff"],
        ["ls"],
        ["prune"],
        ["import"],
        ["upgrade"],
        ["watch"],
        ["export"],
        ["demo"],
    ):
        code, out, err = run(*args, "--help")
        assert code == 0, err
        for noise in ("<bool>", "<str>", "<int", "{KIND}", "[[", "<path>", "object at 0x"):
            assert noise not in out, (args, noise)
    _, out, _ = run("diff", "--help")
    assert "Usage: docstore diff [OPTIONS] KIND NAME V1 [V2]" in out
    _, out, _ = run("ls", "--help")
    assert re.search(r"--limit\s+N\s+.*At most N documents", out)
    for command in ("import", "upgrade"):
        _, out, _ = run(command, "--help")
        assert re.search(r"--batch-size\s+N\s+\S", out), out


def test_version_prints_the_one_version_the_package_and_its_metadata_share(run: Run) -> None:
    """pyproject's version is dynamic, read from docstore/__init__.py (hatch), so the
    command, ``__version__`` and the installed metadata cannot disagree."""
    from importlib.metadata import version

    import docstore

    assert run("--version") == (0, f"docstore {docstore.__version__}\n", "")
    assert version("docstore") == docstore.__version__
    project = tomllib.loads((Path(docstore.__file__).parent.parent / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"] == {"path": "docstore/__init__.py"}


def test_author_is_recorded_and_shown_by_log(run: Run, store: DocStore) -> None:
    assert run("put", "agent", "a", "-", "--author", "alice", stdin='{"name": "a"}')[0] == 0
    assert (
        run("--author", "bob", "put", "agent", "a", "-", stdin='{"name": "a", "max_iterations": 3}')[0] == 0
    )
    assert run("revert", "agent", "a", "1", "--author", "carol")[0] == 0
    assert run("rm", "agent", "a", "--author", "dave")[0] == 0
    _, out, _ = run("log", "agent", "a", "--json")
    assert [v["author"] for v in json.loads(out)] == ["alice", "bob", "carol", "dave"]
    _, out, _ = run("log", "agent", "a")
    assert "alice" in out and "dave" in out


def test_export_json_is_json_lines_as_documented(run: Run) -> None:
    run("put", "agent", "a", "-", stdin='{"name": "a"}')
    code, out, _ = run("export", "--json")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and [json.loads(x)["t"] for x in lines] == ["document", "version"]
    doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    assert "`export` always writes JSON lines" in " ".join(doc.split())


def _sigint_as_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _partial_started(directory: Path) -> bool:
    for path in directory.iterdir():
        try:
            if path.name.endswith(".partial") and path.stat().st_size > 0:
                return True
        except FileNotFoundError:  # renamed meanwhile: the export is finishing
            pass
    return False


@pytest.mark.servers
def test_ctrl_c_during_export_to_a_file_leaves_the_file_as_it_was(
    docstore_dsn: str, store: DocStore, tmp_path: Path
) -> None:
    from psycopg import sql

    target = tmp_path / "backup.jsonl"
    added = 0
    # On a loaded machine the export may finish before the signal lands: then it must have
    # written the whole file, and the test tries again with more to export.
    for rows in (30_000, 60_000, 120_000):
        with store.pool.connection() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {s}.documents (kind, name, mode, version, data) "
                    "SELECT 'note', 'n' || i, 's', 1, "
                    "jsonb_build_object('i', i, 'pad', repeat('x', 500)) "
                    "FROM generate_series(%(a)s::int, %(b)s::int) i"
                ).format(s=sql.Identifier(store.schema)),
                {"a": added + 1, "b": added + rows},
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {s}.versions (kind, name, version, op, data) "
                    "SELECT kind, name, 1, 'put', data FROM {s}.documents WHERE kind = 'note' "
                    "ON CONFLICT DO NOTHING"
                ).format(s=sql.Identifier(store.schema))
            )
        added += rows
        target.write_text("the previous export\n")
        child = subprocess.Popen(
            [str(DOCSTORE), "--dsn", docstore_dsn, "--schema", store.schema, "export", "-o", str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C as a terminal sends it: a suite started in the background by a
            # non-interactive shell ignores SIGINT, and a child would inherit that (Python
            # then installs no KeyboardInterrupt handler, and the export runs to its end).
            preexec_fn=_sigint_as_default,
        )
        try:
            deadline = time.monotonic() + 60
            while not _partial_started(tmp_path) and child.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
        if child.returncode == 0:  # finished first: complete, and nothing left behind
            assert target.read_text().count("\n") == 2 * added
            assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.jsonl"]
            continue
        assert child.returncode == 130 and "interrupted" in err, err
        assert target.read_text() == "the previous export\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.jsonl"]
        return
    pytest.fail("the export always finished before Ctrl-C reached it")


def test_an_export_to_a_file_replaces_it_whole(run: Run, tmp_path: Path) -> None:
    run("put", "agent", "a", "-", stdin='{"name": "a"}')
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    code, _out, err = run("export", "-o", str(target))
    assert code == 0 and "exported 1 document(s), 1 version(s)" in err
    assert target.read_text().count("\n") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    code, _, err = run("export", "-o", str(tmp_path / "no" / "out.jsonl"))
    assert code == 1 and f"no such directory: {tmp_path / 'no'}" in err


# --- issue 13: names that carry markup or terminal escapes ----------------------------


def test_ls_and_friends_print_names_literally_and_never_pass_terminal_escapes(
    run: Run, store: DocStore
) -> None:
    from docstore.agents.storage import StorageManager

    hostile = ["[red]x[/red]", "[bold]", "evil\x1b]0;pwned\x07\x1b[2J", "rtl\u202egpj.exe", "c1\x9b31m"]
    for name in hostile:
        assert run("put", "agent", name, "-", stdin=json.dumps({"name": "a"}))[0] == 0
    code, out, _ = run("ls", "agent")
    assert code == 0
    assert "[red]x[/red]" in out and "[bold]" in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in out and "rtl\\u202egpj.exe" in out
    assert "c1\\x9b31m" in out
    for bad in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert bad not in out
    code, out, err = run("log", "agent", hostile[2], "--author", "\x1b[31mmallory")
    assert code == 0 and "\x1b" not in out, err
    code, _, err = run("get", "agent", "gone\x1b[2J")
    assert code == 1 and "\x1b" not in err
    StorageManager(store).save_full_history(
        "\x1b[2Jagent", "s\x1b1", [{"role": "user", "content": "[bold]hi\x1b[31m\nsecond line"}]
    )
    code, out, _ = run("history", "\x1b[2Jagent", "s\x1b1")
    assert code == 0 and "\x1b" not in out and "[bold]hi\\x1b[31m" in out
    assert "second line" in out
