"""``docstore aurite -- COMMAND``: the framework's own API server and CLI on docstore, with
no host code; and what install()/attach() refuse."""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aurite.lib.models.api.responses import AgentRunResult
from aurite.lib.storage.sessions.cache_manager import CacheManager
from aurite.lib.storage.sessions.session_manager import SessionManager
from llm_standin import StandInLLM
from psycopg.conninfo import make_conninfo
from test_aurite_kernel import framework_env, project

import docstore.agents.aurite as integration
from docstore import DocStore
from docstore.agents import StorageConfigError, StorageManager
from docstore.cli import main

# Runs the framework aurite in processes of its own (docs/contributing.md, markers).
pytestmark = [pytest.mark.servers, pytest.mark.framework]

DOCSTORE = str(Path(sys.executable).with_name("docstore"))
SECRET = "launcher-pw-" + uuid.uuid4().hex[:8]  # trust auth takes any password


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_password(dsn: str) -> str:
    return make_conninfo(dsn, password=SECRET)


def call(method: str, url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, headers={"X-API-Key": "launcher-key"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
            return reply.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def command_lines() -> list[str]:
    """Every process's command line on this machine."""
    lines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            lines.append(
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except OSError:
            continue
    return lines


@pytest.fixture
def seeded(docstore_factory: Callable[..., DocStore], tmp_path: Path) -> StorageManager:
    """Sessions saved by the framework's own SessionManager on docstore, before any server."""
    storage = StorageManager(docstore_factory())
    sessions = SessionManager(CacheManager(tmp_path / "seed-cache"), storage_manager=storage)  # type: ignore[arg-type]
    for i, agent in enumerate(("weather", "weather", "travel")):
        history = [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        result = AgentRunResult(status="success", conversation_history=history, agent_name=agent)
        sessions.save_agent_result(f"agent-{i}", result)
        time.sleep(0.01)  # distinct times: the listing is newest first
    return storage


@pytest.fixture
def api_server(seeded: StorageManager, docstore_dsn: str, tmp_path: Path) -> Iterator[str]:
    """`docstore aurite -- aurite api` in development mode (uvicorn --reload, whose worker
    is a new process), on a port of its own."""
    root = project(tmp_path / "project")
    port = free_port()
    env = framework_env(with_password(docstore_dsn), seeded.store.schema, root, "http://127.0.0.1:9/v1")
    env.update(API_KEY="launcher-key", HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="WARNING")
    env.pop("ENV", None)  # the framework's default: development
    # Leaving the with closes the stderr pipe (and waits for the server, stopped by then).
    with subprocess.Popen(
        [DOCSTORE, "aurite", "--", "aurite", "api"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as server:
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if server.poll() is not None:
                    raise AssertionError(f"the API server exited: {server.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
                try:
                    if call("GET", base + "/health")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("the API server never answered /health")
                time.sleep(0.2)
            yield base
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def test_aurite_s_api_server_serves_history_from_docstore(api_server: str, seeded: StorageManager) -> None:
    history = api_server + "/execution/history"
    status, page = call("GET", history + "?agent_name=weather&limit=1&offset=1")
    assert status == 200
    assert (page["total"], [s["session_id"] for s in page["sessions"]]) == (2, ["agent-0"])
    status, everything = call("GET", history + "?limit=10")
    assert [s["session_id"] for s in everything["sessions"]] == ["agent-2", "agent-1", "agent-0"]

    status, one = call("GET", history + "/agent-1")
    assert status == 200
    assert one["execution_result"]["conversation_history"][-1] == {"role": "assistant", "content": "a1"}
    assert call("GET", history + "/agent-404")[0] == 404

    assert call("DELETE", history + "/agent-1")[0] == 204
    assert call("GET", history + "/agent-1")[0] == 404
    assert call("DELETE", history + "/agent-1")[0] == 404
    # The delete is a tombstone in docstore, which a docstore call undoes.
    assert seeded.restore_session("agent-1") is True
    assert call("GET", history + "/agent-1")[0] == 200
    # The password of AURITE_DB_URL is on no process's command line.
    assert not [line for line in command_lines() if SECRET in line]


def test_aurite_export_then_aurite_run_through_the_launcher_work_on_docstore(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, tmp_path: Path
) -> None:
    """`aurite export` (files -> database) writes the project's configs to docstore, and
    `aurite run` then finds its agent there and keeps the session there."""
    store = docstore_factory()
    root = project(tmp_path / "project")
    (root / ".aurite").write_text('[aurite]\ntype = "project"\ninclude_configs = ["config"]\n')
    templates = Path(str(importlib.resources.files("aurite") / "lib" / "init_templates" / "config"))
    shutil.copytree(templates, root / "config")
    with StandInLLM() as llm:
        local = [
            {"type": "llm", "name": "standin", "provider": "openai", "model": "any", "api_base": llm.api_base,
             "api_key_env_var": "STANDIN_KEY"},
            {"type": "agent", "name": "cli-agent", "llm_config_id": "standin", "include_history": True},
        ]  # fmt: skip
        (root / "config" / "local.json").write_text(json.dumps(local))
        env = framework_env(docstore_dsn, store.schema, root, llm.api_base)

        def launch(*command: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                [DOCSTORE, "aurite", "--", *command],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            return done

        launch("aurite", "export")
        index = StorageManager(store).load_index_from_db()
        assert sum(len(configs) for configs in index.values()) == 24  # the template's 22, and ours
        assert index["agent"]["cli-agent"]["_source_file"] == str(root / "config" / "local.json")
        launch("aurite", "run", "cli-agent", "Hello from a shell", "--session-id", "agent-cli-1")
        assert [m["content"] for m in llm.requests[-1]["messages"]] == ["Hello from a shell"]
    history = StorageManager(store).load_history("cli-agent", "agent-cli-1")
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert not (root / ".aurite_db").exists() and not (root / "own-storage.db").exists()


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "said"),
    [("1", "aurite reads only 'true'"), ("false", "AURITE_ENABLE_DB is not 'true'"), (None, "is not 'true'")],
)
def test_the_launcher_refuses_where_aurite_would_not_use_a_database(
    flag: str | None, said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AURITE_ENABLE_DB", raising=False)
    if flag is not None:
        monkeypatch.setenv("AURITE_ENABLE_DB", flag)
    code, err = run_cli(["aurite", "--", "aurite", "api"], capsys)
    assert code == 1 and said in err


def test_the_launcher_names_a_missing_variable_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("AURITE_DB_URL", "AURITE_DB_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AURITE_ENABLE_DB", "true")
    monkeypatch.setenv("AURITE_DB_USER", "app")
    code, err = run_cli(["aurite", "--", "aurite", "api"], capsys)
    assert code == 1 and "AURITE_DB_NAME" in err


def test_install_and_attach_refuse_an_aurite_they_were_not_tested_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.5.0")
    monkeypatch.setenv("AURITE_ENABLE_DB", "true")
    with pytest.raises(integration.AuriteVersionError, match=r"aurite 0\.5\.0 is installed.*0\.4\.2"):
        integration.install()
    with pytest.raises(integration.AuriteVersionError, match=r"0\.5\.0"):
        integration.attach(object())


def test_install_leaves_aurite_alone_when_its_database_mode_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from aurite.lib.storage.db import db_manager

    before = db_manager.StorageManager
    monkeypatch.setenv("AURITE_ENABLE_DB", "false")
    assert integration.install() is False
    assert db_manager.StorageManager is before
    monkeypatch.setenv("AURITE_ENABLE_DB", "yes")
    with pytest.raises(StorageConfigError, match="aurite reads only 'true'"):
        integration.install()
    assert db_manager.StorageManager is before


def test_attach_refuses_a_spelling_aurite_does_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURITE_ENABLE_DB", "1")
    with pytest.raises(StorageConfigError, match="aurite reads only 'true'"):
        integration.attach(object())


def test_global_options_before_aurite_are_refused_and_after_a_name_still_hoisted(
    docstore_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AURITE_ENABLE_DB", "true")
    monkeypatch.setenv("AURITE_DB_URL", docstore_dsn)
    code, err = run_cli(["--schema", "elsewhere", "aurite", "--", "aurite", "api"], capsys)
    assert code == 1 and "does not use --schema" in err and "AURITE_DB_SCHEMA" in err
    # A document named "aurite" is a name, not the command: --json still applies.
    code, err = run_cli(["--dsn", docstore_dsn, "get", "llm", "aurite", "--json"], capsys)
    assert code == 1 and json.loads(err)["error"]


def test_launched_processes_import_nothing_until_they_import_the_framework(
    docstore_dsn: str, tmp_path: Path
) -> None:
    """A Python process the command starts (an MCP server, say) pays nothing; one whose own
    sitecustomize fails still gets the framework on docstore, saying what failed."""
    other = tmp_path / "other_site"
    other.mkdir()
    (other / "sitecustomize.py").write_text("raise RuntimeError('the shadowed one broke')\n")
    env = framework_env(docstore_dsn, "t_unused", tmp_path, "http://127.0.0.1:9/v1")
    env["PYTHONPATH"] = str(other)
    probe = (
        "import sys\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('docstore', 'aurite')]\n"
        "from aurite.lib.storage.db import db_connection, db_manager\n"
        "print(db_manager.StorageManager.__name__, db_connection.create_db_engine.__module__)\n"
    )
    done = subprocess.run(
        [DOCSTORE, "aurite", "--", sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["AuriteStorage", "docstore.agents.aurite"]
    assert "the sitecustomize this one shadows failed: RuntimeError: the shadowed one broke" in done.stderr
