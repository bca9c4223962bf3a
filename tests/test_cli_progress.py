"""Progress bars on long commands (export, import, sync): drawn on stderr when it is a
terminal, never with --json, never when stderr is piped.

The command runs in this process with its stderr on a pseudo-terminal (the pty
module's): what a user at a terminal sees is what the terminal side receives.
"""

from __future__ import annotations

import json
import os
import pty
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Run

from docstore import DocStore
from docstore.agents import sync_path
from docstore.cli import main

pytestmark = pytest.mark.usefixtures("terminal_env")

AGENTS = 1100  # more than one batch of a sync (docstore.agents.storage.SYNC_BATCH)


@pytest.fixture
def store(docstore_factory: Any) -> DocStore:
    s: DocStore = docstore_factory()
    return s


@pytest.fixture
def terminal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a terminal session has; rich draws nothing on a "dumb" one.
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CI"):
        monkeypatch.delenv(name, raising=False)


class Terminal:
    """A pseudo-terminal: ``file`` is its program side, ``seen`` what reached the user's."""

    def __init__(self) -> None:
        self._user, program = pty.openpty()
        self.file = open(program, "w", encoding="utf-8")  # noqa: SIM115  (closed in close())
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._user, 4096)
            except OSError:  # the program side closed
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def close(self) -> str:
        self.file.close()
        self._reader.join(timeout=5)
        os.close(self._user)
        return b"".join(self._chunks).decode("utf-8", "replace")


@pytest.fixture
def on_terminal(
    docstore_dsn: str, store: DocStore, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    """on_terminal(*args, schema=None) -> (exit status, what the terminal showed): the
    command with its stderr on a pseudo-terminal (on the test's schema, or ``schema``)."""

    def invoke(*args: str, schema: str | None = None) -> tuple[int, str]:
        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal.file)
        try:
            assert sys.stderr.isatty()
            code = main(["--dsn", docstore_dsn, "--schema", schema or store.schema, *args])
        finally:
            monkeypatch.setattr(sys, "stderr", sys.__stderr__)
            shown = terminal.close()
        capfd.readouterr()
        return code, shown

    yield invoke


@pytest.fixture
def run(docstore_dsn: str, store: DocStore, capfd: pytest.CaptureFixture[str]) -> Run:
    """The command with stdout and stderr piped (pytest's capture)."""

    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        capfd.readouterr()
        code = main(["--dsn", docstore_dsn, "--schema", store.schema, *args])
        out, err = capfd.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A config tree: AGENTS agents in 11 files."""
    root = tmp_path / "configs"
    root.mkdir()
    per_file = AGENTS // 11
    for f in range(11):
        agents = [{"type": "agent", "name": f"agent-{f}-{i}"} for i in range(per_file)]
        (root / f"agents_{f:02d}.json").write_text(json.dumps(agents), encoding="utf-8")
    return root


def _a_bar_for(label: str, count: int, shown: str) -> bool:
    """A rich progress line: the label, then a bar, then done/total."""
    return label in shown and f"{count}/{count}" in shown and "━" in shown


def test_sync_export_and_import_of_a_large_tree_show_a_bar_on_a_terminal(
    on_terminal: Any, tree: Path, tmp_path: Path, docstore_factory: Any
) -> None:
    code, shown = on_terminal("sync", str(tree))
    assert code == 0 and _a_bar_for("syncing", AGENTS, shown), shown[-2000:]
    export = tmp_path / "all.jsonl"
    code, shown = on_terminal("export", "-o", str(export))
    assert code == 0 and _a_bar_for("exporting", AGENTS, shown), shown[-2000:]
    assert f"exported {AGENTS} document(s)" in shown  # the summary, after the bar
    code, shown = on_terminal("import", str(export), schema=docstore_factory(init=False).schema)
    lines = AGENTS * 2  # a document line and a version line each
    assert code == 0 and _a_bar_for("importing", lines, shown), shown[-2000:]


def test_no_bar_with_json_even_on_a_terminal(on_terminal: Any, tree: Path, tmp_path: Path) -> None:
    code, shown = on_terminal("--json", "sync", str(tree))
    assert code == 0 and shown == ""
    code, shown = on_terminal("export", "--json", "-o", str(tmp_path / "all.jsonl"))
    assert code == 0 and shown == ""  # the summary is JSON on stdout


def test_no_bar_when_stderr_is_piped(run: Run, tree: Path, tmp_path: Path) -> None:
    code, out, err = run("sync", str(tree))
    assert code == 0 and err == "" and "agent" in out
    code, _, err = run("export", "-o", str(tmp_path / "all.jsonl"))
    assert (
        code == 0
        and err == f"exported {AGENTS} document(s), {AGENTS} version(s) to {tmp_path / 'all.jsonl'}\n"
    )


def test_sync_path_reports_progress_after_each_batch(store: DocStore, tree: Path) -> None:
    seen: list[tuple[int, int]] = []
    report = sync_path(store, tree, progress=lambda done, total: seen.append((done, total)))
    assert len(report.written) == AGENTS
    assert seen == [(0, AGENTS), (1000, AGENTS), (AGENTS, AGENTS)]
