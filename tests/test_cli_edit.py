"""``docstore edit`` and ``docstore patch`` (issue 28, item 6): changes from a shell that
keep the keys they do not name. The editor is a scripted $EDITOR: a small shell script
that edits the file it is given, as a person would."""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Run

from docstore import DocStore
from docstore.cli._edit import merge_patch

AGENT = {
    "name": "weather",
    "llm_config_id": "fast",
    "system_prompt": "hi",
    "_source_file": "/cfg/agents.json",
}
LLM = {"name": "fast", "provider": "anthropic", "model": "claude-haiku"}


@pytest.fixture
def store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    return docstore_factory()


@pytest.fixture
def drafts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where edit keeps the files it makes (the temporary directory, made the test's own)."""
    folder = tmp_path / "drafts"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, variable: str = "EDITOR") -> None:
    """$EDITOR (or $VISUAL) as a shell script; the file to edit is its $1."""
    script = tmp_path / f"editor-{abs(hash(body))}.sh"
    script.write_text("#!/bin/sh\nset -e\n" + body + "\n")
    script.chmod(0o755)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv(variable, str(script))


def _versions(run: Run, kind: str, name: str) -> list[int]:
    code, out, err = run("--json", "log", kind, name)
    assert code == 0, err
    return [row["version"] for row in json.loads(out)]


def _kept(err: str) -> Path:
    found = re.search(r"your text is kept in (\S+)", err)
    assert found, err
    return Path(found.group(1))


# --- edit -------------------------------------------------------------------------------


def test_edit_writes_the_edited_document_keeping_every_other_key(
    run: Run, tmp_path: Path, drafts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("put", "agent", "weather", "-", stdin=json.dumps(AGENT))[0] == 0
    # The file is the document as `get` prints it, pretty JSON: a line-wise edit works.
    _editor(tmp_path, monkeypatch, 'grep -q \'^  "system_prompt": "hi",$\' "$1"\nsed -i s/hi/hello/ "$1"')
    code, out, err = run("edit", "agent", "weather")
    assert (code, out) == (0, "agent 'weather': version 2\n"), err
    code, out, _ = run("get", "agent", "weather")
    assert json.loads(out) == {**AGENT, "system_prompt": "hello"}  # _source_file kept
    assert list(drafts.iterdir()) == []  # written: nothing left behind


def test_edit_with_nothing_changed_writes_nothing(
    run: Run, tmp_path: Path, drafts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("put", "agent", "weather", "-", stdin=json.dumps(AGENT))[0] == 0
    # $VISUAL when $EDITOR is unset; re-indenting is no change.
    _editor(tmp_path, monkeypatch, 'tr -d \' \\n\' < "$1" > "$1.new"\nmv "$1.new" "$1"', "VISUAL")
    code, out, err = run("--json", "edit", "agent", "weather")
    assert code == 0, err
    assert json.loads(out) == {"kind": "agent", "name": "weather", "version": 1, "changed": False}
    assert _versions(run, "agent", "weather") == [1] and list(drafts.iterdir()) == []


def test_edit_refuses_on_a_conflict_and_keeps_the_users_text(
    run: Run, store: DocStore, tmp_path: Path, drafts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("put", "agent", "weather", "-", stdin=json.dumps(AGENT))[0] == 0
    # While the editor is open, another writer changes the document.
    editing, go = tmp_path / "editing", tmp_path / "go"
    _editor(
        tmp_path,
        monkeypatch,
        f'touch {editing}\nwhile [ ! -f {go} ]; do sleep 0.01; done\nsed -i s/hi/mine/ "$1"',
    )
    store.register("agent", dict)

    def other_writer() -> None:
        for _ in range(1000):
            if editing.exists():
                break
            threading.Event().wait(0.01)
        store.put("agent", "weather", {**AGENT, "system_prompt": "theirs"})
        go.touch()

    writer = threading.Thread(target=other_writer)
    writer.start()
    code, out, err = run("edit", "agent", "weather")
    writer.join(timeout=30)
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert "agent 'weather' changed while you edited it: you read version 1, it is now at version 2" in err
    assert "nothing was written" in err and "docstore diff agent weather 1" in err
    draft = _kept(err)
    assert draft.parent == drafts and json.loads(draft.read_text())["system_prompt"] == "mine"
    assert run("get", "agent", "weather")[1].count("theirs") == 1
    # The kept text can be stored as it is, as the message says.
    code, _, err = run("put", "agent", "weather", str(draft))
    assert code == 0, err


def test_edit_with_invalid_json_or_an_invalid_document_says_so_and_keeps_the_text(
    run: Run, tmp_path: Path, drafts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("put", "llm", "fast", "-", stdin=json.dumps(LLM))[0] == 0
    _editor(tmp_path, monkeypatch, 'sed -i \'s/"claude-haiku"/claude-haiku/\' "$1"')
    code, out, err = run("edit", "llm", "fast")
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert "llm 'fast': your text is not valid JSON (line 4, column 12:" in err
    assert "nothing was written" in err and "claude-haiku\n" in _kept(err).read_text()

    _editor(tmp_path, monkeypatch, 'sed -i \'s/"model"/"modle"/\' "$1"')
    code, out, err = run("--json", "edit", "llm", "fast")
    error = json.loads(err)["error"]
    assert (code, error["type"]) == (1, "DocumentInvalid")
    assert "model: Field required" in error["message"] and '"modle"' in _kept(error["message"]).read_text()
    assert _versions(run, "llm", "fast") == [1]
    assert len(list(drafts.iterdir())) == 2


def test_edit_refuses_what_it_cannot_edit(
    run: Run, store: DocStore, tmp_path: Path, drafts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _editor(tmp_path, monkeypatch, "exit 3")
    assert run("put", "agent", "weather", "-", stdin=json.dumps(AGENT))[0] == 0
    code, _, err = run("edit", "agent", "weather")
    assert code == 1 and "exited with status 3: nothing was written" in err
    code, _, err = run("edit", "agent", "nobody")
    assert code == 1 and "agent 'nobody' not found" in err
    store.register("chat", dict, mode="log")
    store.append("chat", "c", [{}])
    code, _, err = run("edit", "chat", "c")
    assert code == 1 and "'chat' is a log kind" in err


# --- patch ------------------------------------------------------------------------------


def test_patch_is_a_json_merge_patch_that_keeps_the_keys_it_does_not_name(run: Run) -> None:
    assert run("put", "agent", "weather", "-", stdin=json.dumps({**AGENT, "llm": {"temperature": 1}}))[0] == 0
    change = {"system_prompt": "bye", "llm": {"max_tokens": 100}, "_source_file": None}
    code, out, err = run("patch", "agent", "weather", json.dumps(change))
    assert (code, out) == (0, "agent 'weather': version 2\n"), err
    expected = {
        "name": "weather",
        "llm_config_id": "fast",
        "system_prompt": "bye",
        "llm": {"temperature": 1, "max_tokens": 100},
    }
    assert json.loads(run("get", "agent", "weather")[1]) == expected
    # From stdin, and a patch that changes nothing writes nothing.
    code, out, _ = run("--json", "patch", "agent", "weather", "-", stdin='{"system_prompt": "bye"}')
    assert (code, json.loads(out)["changed"], json.loads(out)["version"]) == (0, False, 2)


def test_patch_checks_the_expected_version_and_the_kinds_model(run: Run) -> None:
    assert run("put", "llm", "fast", "-", stdin=json.dumps(LLM))[0] == 0
    code, _, err = run("patch", "llm", "fast", '{"model": "m2"}', "--expected-version", "1")
    assert code == 0, err
    code, _, err = run("--json", "patch", "llm", "fast", '{"model": "m3"}', "--expected-version", "1")
    error = json.loads(err)["error"]
    assert (code, error["type"]) == (1, "VersionConflict") and "at version 2" in error["message"]
    code, _, err = run("patch", "llm", "fast", '{"model": null}')
    assert code == 1 and "model: Field required" in err
    code, _, err = run("patch", "llm", "fast", '{"model": }')
    assert code == 1 and "the patch is not valid JSON (line 1, column 11" in err
    assert _versions(run, "llm", "fast") == [1, 2]


def test_merge_patch_follows_rfc_7386() -> None:
    # RFC 7386, appendix A, every example.
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, result in cases:
        assert merge_patch(target, patch) == result, (target, patch)
