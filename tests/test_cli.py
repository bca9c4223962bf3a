"""The `docstore` command, through its entry point main(argv), against the real server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Run

from docstore import DocStore
from docstore import ddl_version as release_ddl_version
from docstore.cli import main


@pytest.fixture
def store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    return docstore_factory()


def _json(out: str) -> Any:
    return json.loads(out)


def _write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_init_creates_the_schema_and_is_idempotent(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    fresh = docstore_factory(init=False)
    for _ in range(2):
        assert main(["--dsn", docstore_dsn, "--schema", fresh.schema, "--json", "init"]) == 0
        report = json.loads(capfd.readouterr().out)
        assert report["ddl_version"] == release_ddl_version() and report["schema"] == fresh.schema
    # The agents layer's DDL too: the analysts' messages view and the session indexes.
    with psycopg.connect(docstore_dsn) as conn:
        found = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL",
            [f'"{fresh.schema}".messages', f'"{fresh.schema}".conversation_recent_idx'],
        ).fetchone()
    assert found == (True, True)


def test_put_get_ls_log_diff_revert_rm(run: Run, tmp_path: Path) -> None:
    v1 = _write(tmp_path, "a.json", {"name": "fast", "provider": "openai", "model": "gpt-4o"})
    code, out, err = run("put", "llm", "fast", v1, "--json")
    assert (code, _json(out)) == (0, {"kind": "llm", "name": "fast", "version": 1, "changed": True}), err
    assert _json(run("put", "llm", "fast", v1, "--json")[1])["changed"] is False
    (tmp_path / "b.yaml").write_text("name: fast\nprovider: openai\nmodel: gpt-4o\ntemperature: 0.5\n")
    assert run("put", "llm", "fast", str(tmp_path / "b.yaml"))[1] == "llm 'fast': version 2\n"

    code, out, _ = run("get", "llm", "fast")
    assert code == 0 and _json(out)["temperature"] == 0.5
    code, out, _ = run("get", "llm", "fast", "--version", "1", "--json")
    assert _json(out)["version"] == 1 and "temperature" not in _json(out)["data"]

    code, out, _ = run("--json", "ls", "llm", "--where", '{"provider": "openai"}')
    assert [d["name"] for d in _json(out)] == ["fast"]
    assert _json(run("--json", "ls", "llm", "--where", '{"provider": "x"}')[1]) == []
    code, out, _ = run("ls", "llm")
    assert code == 0 and "fast" in out

    code, out, _ = run("log", "llm", "fast", "--json")
    assert [(v["version"], v["op"]) for v in _json(out)] == [(1, "put"), (2, "put")]

    code, out, _ = run("diff", "llm", "fast", "1", "2", "--json")
    # A config stores the keys it was given: version 1 had no temperature.
    assert _json(out)["changes"] == [{"op": "add", "path": "temperature", "new": 0.5}]
    code, out, _ = run("diff", "llm", "fast", "1")
    assert code == 0 and "+ temperature: 0.5" in out

    code, out, _ = run("revert", "llm", "fast", "1", "--json")
    assert _json(out) == {"kind": "llm", "name": "fast", "version": 3, "reverted_to": 1}
    code, out, _ = run("rm", "llm", "fast", "--expected-version", "3")
    assert code == 0 and "deleted at version 4" in out
    code, out, err = run("get", "llm", "fast")
    assert code == 1 and out == "" and err == "docstore: error: llm 'fast' not found: deleted\n"
    code, out, _ = run("restore", "llm", "fast", "--json")
    assert _json(out) == {"kind": "llm", "name": "fast", "version": 5, "deleted": False}
    assert _json(run("get", "llm", "fast")[1])["model"] == "gpt-4o"


def test_put_reads_stdin_and_unknown_kinds_are_kept_as_plain_json(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"colour": "blue", "n": [1, 2]}'))
    assert run("put", "widget", "w1", "-", "--new-kind")[0] == 0
    code, out, _ = run("get", "widget", "w1", "--json")
    assert code == 0 and _json(out)["data"] == {"colour": "blue", "n": [1, 2]}
    # Once stored, the kind is known: no --new-kind needed any more.
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"colour": "red"}'))
    assert run("put", "widget", "w2", "-")[0] == 0


def test_user_errors_exit_1_with_one_line_and_usage_errors_exit_2(
    run: Run, tmp_path: Path, docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "bad.json", {"name": "x", "provider": "openai"})
    code, out, err = run("put", "llm", "x", bad)
    assert code == 1 and out == "" and err.count("\n") == 1 and "model" in err and "Traceback" not in err
    code, _, err = run("put", "llm", "x", str(tmp_path / "missing.json"))
    assert code == 1 and "no such file" in err
    good = _write(tmp_path, "good.json", {"name": "x", "provider": "openai", "model": "m"})
    code, _, err = run("put", "llm", "x", good, "--expected-version", "3")
    assert code == 1 and "expected to be at version 3, but it does not exist" in err
    assert run("get", "llm")[0] == 2
    assert run("get", "llm", "x", "--version", "zero")[0] == 2
    assert run("frobnicate")[0] == 2
    assert run("prune", "llm")[0] == 2
    assert run("ls", "llm", "--where", "[1]")[0] == 2

    capfd.readouterr()
    assert main(["--dsn", docstore_dsn, "--schema", "no_such_schema", "ls", "agent"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "docstore init" in err


def test_a_password_never_reaches_the_output(capfd: pytest.CaptureFixture[str]) -> None:
    dsn = "postgresql://postgres:hunter2secret@127.0.0.1:1/test?connect_timeout=2"
    assert main(["--dsn", dsn, "status"]) == 1
    out, err = capfd.readouterr()
    assert "hunter2secret" not in out + err and err.startswith("docstore: error: cannot connect")
    assert err.count("\n") == 1


def test_global_options_work_after_the_command(run: Run, tmp_path: Path) -> None:
    run("put", "llm", "a", _write(tmp_path, "a.json", {"name": "a", "provider": "p", "model": "m"}))
    code, out, _ = run("ls", "llm", "--json")
    assert code == 0 and _json(out)[0]["name"] == "a"


def test_status_counts_documents_versions_and_sizes(run: Run, store: DocStore) -> None:
    store.kinds.register("note", dict)
    store.put("note", "a", {"x": 1})
    store.put("note", "a", {"x": 2})
    store.put("note", "b", {"x": 1})
    store.delete("note", "b")
    code, out, _ = run("status", "--json")
    report = _json(out)
    release = release_ddl_version()
    assert code == 0 and report["ddl_version"] == release and report["schema"] == store.schema
    assert report["release_ddl_version"] == release  # this docstore's, beside the store's
    (note,) = report["kinds"]
    assert (note["kind"], note["documents"], note["deleted"], note["versions"]) == ("note", 1, 1, 4)
    assert note["bytes"] > 0 and report["total_bytes"] > 0
    code, out, _ = run("status")
    assert code == 0 and "note" in out and f"DDL version {release} (this docstore's)" in out


def _conversation(store: DocStore) -> None:
    from docstore.agents.storage import StorageManager

    manager = StorageManager(store)
    manager.save_full_history(
        "weather",
        "s1",
        [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "t1", "name": "get_forecast", "input": {"city": "Paris"}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "18C"}]},
            {"role": "assistant", "content": "18C."},
        ],
    )


def test_history_prints_roles_text_and_tool_calls(run: Run, store: DocStore) -> None:
    _conversation(store)
    code, out, _ = run("history", "weather", "s1")
    assert code == 0
    assert "Weather in Paris?" in out and "-> get_forecast" in out and "<- result t1" in out
    code, out, _ = run("history", "weather", "s1", "--last", "2", "--json")
    messages = _json(out)["messages"]
    assert [m["version"] for m in messages] == [3, 4]
    assert messages[1]["message"]["content"] == "18C."
    code, _, err = run("history", "weather", "nope")
    assert code == 1 and "no session 'nope'" in err


def test_prune_documents_and_versions(run: Run, store: DocStore) -> None:
    store.kinds.register("note", dict)
    for i in range(5):
        store.put("note", f"n{i}", {"i": i})
    for i in range(3):
        store.put("note", "n0", {"i": 10 + i})
    code, out, _ = run("prune", "note", "--versions", "--keep-last", "1", "--json")
    assert (code, _json(out)) == (0, {"kind": "note", "pruned": 3, "what": "versions"})
    code, out, _ = run("prune", "note", "--keep-last", "2", "--json")
    assert _json(out)["pruned"] == 3
    assert _json(run("prune", "note", "--older-than", "30d", "--json")[1])["pruned"] == 0
    assert run("prune", "note", "--older-than", "soon")[0] == 2
    assert run("prune", "note", "--versions")[0] == 2


def test_upgrade_rewrites_documents_of_an_older_schema_version(run: Run, store: DocStore) -> None:
    from psycopg import sql

    with store.pool.connection() as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {s}.documents (kind, name, mode, version, schema_version, data) "
                "VALUES ('llm', 'old', 's', 1, 1, %s::jsonb)"
            ).format(s=sql.Identifier(store.schema)),
            ['{"llm_id": "old", "provider": "openai", "model_name": "gpt-4"}'],
        )
    code, out, _ = run("upgrade", "llm", "--json")
    assert (code, _json(out)) == (0, {"kind": "llm", "upgraded": 1, "schema_version": 2})
    code, out, _ = run("get", "llm", "old", "--json")
    assert _json(out)["version"] == 2 and _json(out)["schema_version"] == 2
    assert _json(out)["data"]["model"] == "gpt-4"
    assert _json(run("upgrade", "llm", "--json")[1])["upgraded"] == 0


def test_sync_stores_config_files_and_refuses_broken_ones(run: Run, tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    _write(
        configs,
        "agents.json",
        [{"type": "agent", "name": "a"}, {"type": "llm", "name": "l", "provider": "p", "model": "m"}],
    )
    code, out, _ = run("sync", str(configs), "--json")
    assert code == 0 and _json(out)["kinds"] == {
        "agent": {"written": 1, "unchanged": 0},
        "llm": {"written": 1, "unchanged": 0},
    }
    assert _json(run("sync", str(configs), "--json")[1])["written"] == []
    _write(configs, "broken.json", [{"type": "llm", "name": "bad"}, {"type": "agent", "name": "b"}])
    code, _, err = run("sync", str(configs))
    assert code == 1 and "bad" in err and err.count("\n") == 2  # a head line, one per problem
    assert run("get", "agent", "b")[0] == 1
    code, out, _ = run("sync", str(configs), "--partial", "--json")
    assert code == 0 and _json(out)["written"] == [["agent", "b", 1]]
    assert len(_json(out)["problems"]) == 1


# "Billion laughs": nine levels of nine aliases of the level before, 9**9 leaves in 400 bytes.
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([repr('lol') if name == 'a' else '*' + chr(ord(name) - 1)] * 9)}]\n"
    for name in "abcdefghi"
)


def test_a_yaml_alias_bomb_is_refused_in_one_line_by_put_and_sync(run: Run, tmp_path: Path) -> None:
    """Issue 24, break 8: a 400-byte file whose aliases expand to 387 million strings must
    be refused at once, naming the file and the line, not validated until memory runs
    out. (Before the fix: `put` and `sync` ran out of memory.)"""
    assert 350 <= len(ALIAS_BOMB) <= 450
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    code, out, err = run("put", "note", "x", str(bomb), "--new-kind")  # a kind of any JSON
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert f"{bomb}: its YAML aliases (*name) expand it by more than 100,000 nodes (line " in err
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "bomb.yaml").write_text("type: agent\nname: bomb\n" + ALIAS_BOMB)  # one entry
    code, out, err = run("sync", str(configs))
    assert code == 1 and err.count("\n") == 2 and "alias bomb" in err.splitlines()[1], err
    (configs / "bomb.yaml").write_text("&a [*a]\n")  # a list holding itself
    assert "cannot contain itself" in run("sync", str(configs))[2]
    # Aliases that add little are YAML as usual.
    shared = tmp_path / "shared.yaml"
    shared.write_text("base: &b {provider: openai, model: m}\nname: x\n<<: *b\ncopy: *b\n")
    assert run("put", "llm", "x", str(shared))[0] == 0
    assert _json(run("--json", "get", "llm", "x")[1])["data"]["model"] == "m"


def test_bench_is_handed_its_own_arguments(run: Run) -> None:
    code, out, _ = run("bench", "--help")
    assert code == 0 and "docstore bench" in out
    assert run("bench", "--no-such-flag")[0] == 2


def test_a_log_kind_in_a_snapshot_command_is_refused_in_commands_not_python_calls(run: Run) -> None:
    # Issue 28: the library's message names its methods (append, entries(after=...)).
    for args in (("put", "conversation", "c", "-"), ("get", "conversation", "c", "--version", "1")):
        code, out, err = run("--json", *args, stdin="{}")
        error = _json(err)["error"]
        assert (code, out, error["type"]) == (1, "", "KindMismatch")
        assert error["message"].startswith("kind 'conversation' is a log kind: ")
        assert "docstore history" in error["message"]
        assert "(after" not in error["message"] and "append/" not in error["message"]
