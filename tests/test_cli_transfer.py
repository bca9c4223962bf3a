"""`docstore export` and `docstore import`: every version, stable bytes, idempotent restore."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from docstore import DocStore
from docstore.cli import main


def _fill(store: DocStore) -> None:
    """Snapshot and log kinds, deletions, rewrites, odd values: what a restore must keep."""
    store.kinds.register("note", dict)
    store.kinds.register("chat", dict, mode="log")
    store.put("note", "a", {"n": 1, "text": "héllo\nworld", "big": 12345678901234567890123})
    store.put("note", "a", {"n": 2.5, "nested": {"z": [1, {"y": None}]}})
    store.put("note", "b", {"n": 1})
    store.delete("note", "b")
    store.put("note", "Zed", {"n": 3}, author="alice")
    store.append("chat", "c1", [{"role": "user", "t": i} for i in range(3)])
    store.rewrite("chat", "c1", [{"role": "assistant", "t": 9}])
    store.append("chat", "c2", [{"role": "user", "t": 0}], meta={"topic": "x"})


def _export(dsn: str, schema: str, path: Path, capfd: pytest.CaptureFixture[str], *extra: str) -> bytes:
    capfd.readouterr()
    assert main(["--dsn", dsn, "--schema", schema, "export", "-o", str(path), *extra]) == 0
    capfd.readouterr()
    return path.read_bytes()


def test_export_import_export_gives_the_same_bytes(
    docstore_factory: Callable[..., DocStore],
    docstore_dsn: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = docstore_factory()
    _fill(source)
    first = _export(docstore_dsn, source.schema, tmp_path / "1.jsonl", capfd)
    lines = first.decode().splitlines()
    assert len(lines) == 3 + 5 + 2 + 5  # note heads, note versions, chat heads, chat items
    assert [json.loads(line)["name"] for line in lines if '"t": "document"' in line] == [
        "c1",
        "c2",
        "Zed",
        "a",
        "b",
    ]  # by kind, then name in the C collation

    target = docstore_factory(init=False)
    base = ["--dsn", docstore_dsn, "--schema", target.schema, "--json", "import"]
    assert main([*base, str(tmp_path / "1.jsonl")]) == 0
    assert json.loads(capfd.readouterr().out) == {"documents": 5, "versions": 10}
    assert main([*base, str(tmp_path / "1.jsonl")]) == 0  # again: nothing to do
    assert json.loads(capfd.readouterr().out) == {"documents": 0, "versions": 0}
    assert _export(docstore_dsn, target.schema, tmp_path / "2.jsonl", capfd) == first

    target.kinds.register("chat", dict, mode="log")
    assert [i["t"] for i in target.read("chat", "c1")] == [9]
    assert target.get("chat", "c2").data == {"topic": "x"}


def test_export_to_stdout_and_by_kind(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    source = docstore_factory()
    _fill(source)
    capfd.readouterr()
    assert main(["--dsn", docstore_dsn, "--schema", source.schema, "export", "--kind", "chat"]) == 0
    out = capfd.readouterr().out
    assert {json.loads(line)["kind"] for line in out.splitlines()} == {"chat"}
    assert len(out.splitlines()) == 7


def test_import_refuses_a_store_holding_other_data_and_writes_nothing(
    docstore_factory: Callable[..., DocStore],
    docstore_dsn: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = docstore_factory()
    _fill(source)
    _export(docstore_dsn, source.schema, tmp_path / "1.jsonl", capfd)
    source.put("note", "Zed", {"n": 4})
    assert main(["--dsn", docstore_dsn, "--schema", source.schema, "import", str(tmp_path / "1.jsonl")]) == 1
    err = capfd.readouterr().err
    assert "already holds different data" in err and "'Zed'" in err and err.count("\n") == 1


def test_import_names_the_line_it_cannot_read(
    docstore_factory: Callable[..., DocStore],
    docstore_dsn: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    target = docstore_factory()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": "version", "kind": "note"}\n')
    assert main(["--dsn", docstore_dsn, "--schema", target.schema, "import", str(bad)]) == 1
    assert "import line 1" in capfd.readouterr().err
    bad.write_text("not json\n")
    assert main(["--dsn", docstore_dsn, "--schema", target.schema, "import", str(bad)]) == 1
    assert "import line 1: not JSON" in capfd.readouterr().err
    # Issue 24, break 9: jsonb cannot hold \u0000; the server's error named no line.
    when = "2026-01-01T00:00:00.000000Z"
    head = {"t": "document", "kind": "note", "name": "n", "mode": "snapshot", "version": 1, "live_from": 1}
    head |= {"schema_version": 1, "deleted": False, "created_at": when, "updated_at": when, "data": {}}
    row = {"t": "version", "kind": "note", "name": "n", "version": 1, "schema_version": 1, "op": "put"}
    row |= {"author": None, "written_at": when, "data": {"text": "a\x00b"}}
    bad.write_text(json.dumps(head) + "\n" + json.dumps(row) + "\n")
    assert main(["--dsn", docstore_dsn, "--schema", target.schema, "import", str(bad)]) == 1
    err = capfd.readouterr().err
    assert "import line 2: note 'n': data.text contains \\u0000" in err and err.count("\n") == 1, err
