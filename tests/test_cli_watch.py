"""``docstore watch``: changes printed as they are committed, JSON lines for scripts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_changes import _wait_listening

from docstore import DocStore
from docstore.cli import main
from docstore.cli._watch import resume_hint

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers


@pytest.fixture
def store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    store = docstore_factory()
    store.register("agent", dict)
    store.register("chat", dict, mode="log")
    return store


def test_watch_prints_live_changes_as_json_lines_from_another_process(
    store: DocStore, docstore_dsn: str
) -> None:
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("docstore")),
            "--dsn",
            docstore_dsn,
            "--schema",
            store.schema,
            "watch",
            "agent",
            "--json",
            "--count",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(store, timeout=30)
        store.append("chat", "c", [{}])  # another kind: not printed
        store.put("agent", "a", {"v": 1})
        store.put("agent", "a", {"v": 2})
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["kind"], x["name"], x["version"], x["op"]) for x in lines] == [
        ("agent", "a", 1, "put"),
        ("agent", "a", 2, "put"),
    ]
    assert all(x["cursor"] and x["written_at"] for x in lines)


def test_watch_resumes_after_a_cursor_in_readable_lines(
    store: DocStore, docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    store.put("agent", "a", {})
    store.delete("agent", "a")
    store.append("chat", "c", [{}, {}])
    capfd.readouterr()
    code = main(["--dsn", docstore_dsn, "--schema", store.schema, "watch", "--after", "0.0", "--count", "3"])
    out, _err = capfd.readouterr()
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        ("put", "agent", "'a'", "v1"),
        ("delete", "agent", "'a'", "v2"),
        ("append", "chat", "'c'", "v2"),
    ]
    # The cursor is labelled, and --after it resumes after that change.
    assert [r[6] for r in rows] == ["cursor"] * 3 and len({r[7] for r in rows}) == 3
    code = main(
        ["--dsn", docstore_dsn, "--schema", store.schema, "watch", "--after", rows[0][7], "--count", "2"]
    )
    assert code == 0 and [line.split()[2] for line in capfd.readouterr().out.splitlines()] == [
        "delete",
        "append",
    ]
    # --from-start replays every change still retained: here, all of them.
    code = main(["--dsn", docstore_dsn, "--schema", store.schema, "watch", "--from-start", "--count", "3"])
    assert code == 0 and capfd.readouterr().out == out
    code = main(["--dsn", docstore_dsn, "--schema", store.schema, "watch", "--after", "soon"])
    _out, err = capfd.readouterr()
    assert code == 1 and "not a change feed cursor" in err


@pytest.mark.parametrize("cursor", ["0", "soon", "1.2@3"])
def test_a_malformed_cursor_is_one_typed_line_saying_what_to_pass(
    store: DocStore, docstore_dsn: str, capfd: pytest.CaptureFixture[str], cursor: str
) -> None:
    base = ["--dsn", docstore_dsn, "--schema", store.schema]
    capfd.readouterr()
    assert main([*base, "watch", "--after", cursor]) == 1
    out, err = capfd.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"docstore: error: --after {cursor!r} is not a change feed cursor")
    assert "--from-start" in err and "None" not in err and ".cursor" not in err
    assert main([*base, "--json", "watch", "--after", cursor]) == 1
    error = json.loads(capfd.readouterr().err)["error"]
    assert (error["type"], error["exit_status"]) == ("InvalidCursor", 1)
    assert main([*base, "watch", "--after", "1.0", "--from-start"]) == 2
    assert "not both" in capfd.readouterr().err


def test_the_feeds_resume_hint_is_a_command_not_a_python_call() -> None:
    message = (
        "the change feed lost its connection 4 times in a row (gone); resume with changes(after='7.3@1:9:')"
    )
    assert resume_hint(message) == (
        "the change feed lost its connection 4 times in a row (gone); "
        "resume with `docstore watch --after 7.3@1:9:`"
    )


def test_prune_changes_deletes_old_rows_and_a_feed_behind_them_is_told(
    store: DocStore, docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    store.put("agent", "a", {})
    store.put("agent", "b", {})
    with store.pool.connection() as conn:
        conn.execute(f"UPDATE \"{store.schema}\".changes SET written_at = now() - interval '2 days'")
    gone, deadline = 0, time.monotonic() + 30
    while gone < 2 and time.monotonic() < deadline:  # another test's open transaction defers it
        capfd.readouterr()
        code = main(
            ["--dsn", docstore_dsn, "--schema", store.schema, "--json", "prune-changes", "--older-than", "1d"]
        )
        out, err = capfd.readouterr()
        assert code == 0, err
        gone += json.loads(out)["pruned"]
    assert gone == 2
    code = main(["--dsn", docstore_dsn, "--schema", store.schema, "watch", "--after", "0.0"])
    _out, err = capfd.readouterr()
    assert code == 1 and "fell behind retention" in err
    assert "`docstore watch --from-start`" in err and "changes(" not in err
    # --from-start starts where the prune stopped: the change written since, not an error.
    store.put("agent", "c", {})
    code = main(["--dsn", docstore_dsn, "--schema", store.schema, "watch", "--from-start", "--count", "1"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert out.split()[2:6] == ["put", "agent", "'c'", "v1"]
