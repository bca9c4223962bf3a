"""docs/examples/agent_host.py: a host persisting configs and history, as the plan asked."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from agent_fixtures import count_rows

from docstore import DocStore
from docstore.agents import StorageManager

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "agent_host.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_host_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


agent_host = _load_example()

PROJECT: dict[str, Any] = {
    "llms": [{"name": "fake", "provider": "fake", "model": "fake-1"}],
    "agents": [
        {"name": "weather", "llm_config_id": "fake", "include_history": True},
        {"name": "forgetful", "llm_config_id": "fake", "include_history": False},
    ],
    "simple_workflows": [{"name": "daily", "steps": ["weather"]}],
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project.json"
    path.write_text(json.dumps(PROJECT), encoding="utf-8")
    return path


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> Iterator[DocStore]:
    """AURITE_* pointing at the test database and a fresh schema; yields a store on it."""
    store = docstore_factory()
    StorageManager(store)  # registers the agent kinds for the raw checks
    monkeypatch.setenv("AURITE_ENABLE_DB", "1")
    monkeypatch.setenv("AURITE_DB_URL", docstore_dsn)
    monkeypatch.setenv("AURITE_DB_SCHEMA", store.schema)
    yield store


@pytest.fixture
def new_host() -> Iterator[Callable[[], Any]]:
    """``new_host()`` builds a host from the environment, as a restarted process would."""
    hosts: list[Any] = []

    def make() -> Any:
        host = agent_host.AgentHost.from_env()
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()


def test_initial_sync_from_files_stores_every_config(
    env: DocStore, project: Path, new_host: Callable[[], Any]
) -> None:
    report = new_host().load_config_files(project)
    assert report.applied and len(report.written) == 4
    assert env.get("agent", "weather").data.include_history is True
    assert env.get("linear_workflow", "daily").data.steps == ["weather"]
    again = new_host().load_config_files(project)
    assert again.written == () and len(again.unchanged) == 4


def test_dynamic_registration_persists_for_a_new_host(
    env: DocStore, project: Path, new_host: Callable[[], Any]
) -> None:
    first = new_host()
    first.load_config_files(project)
    first.register_agent({"name": "late", "llm_config_id": "fake", "include_history": True})
    assert env.get("agent", "late").version == 1
    second = new_host()  # knows only what the database holds
    assert "late" in second.agents
    assert "fake-1" in second.run_agent("late", "hi", session_id="s").reply


def test_history_survives_a_new_host_instance(
    env: DocStore, project: Path, new_host: Callable[[], Any]
) -> None:
    first = new_host()
    first.load_config_files(project)
    first.run_agent("weather", "Rain in Paris?", session_id="s1")
    second = new_host()
    result = second.run_agent("weather", "And tomorrow?", session_id="s1")
    assert [m["content"] for m in result.messages[:3]] == [
        "Rain in Paris?",
        "[fake-1] 1 message(s) seen; you said: Rain in Paris?",
        "And tomorrow?",
    ]
    assert result.reply == "[fake-1] 3 message(s) seen; you said: And tomorrow?"
    stored = second.storage.load_history("weather", "s1", limit=0)
    assert stored == result.messages
    # The second save appended its two new messages only.
    assert count_rows(env, "versions", "conversation") == 4


def test_two_sessions_of_one_agent_stay_apart(
    env: DocStore, project: Path, new_host: Callable[[], Any]
) -> None:
    host = new_host()
    host.load_config_files(project)
    host.run_agent("weather", "one", session_id="a")
    host.run_agent("weather", "two", session_id="b")
    result = host.run_agent("weather", "three", session_id="a")
    assert [m["content"] for m in result.messages if m["role"] == "user"] == ["one", "three"]
    assert [s.data.session_id for s in host.storage.list_sessions("weather")] == ["a", "b"]


def test_include_history_off_loads_and_saves_nothing(
    env: DocStore, project: Path, new_host: Callable[[], Any]
) -> None:
    host = new_host()
    host.load_config_files(project)
    # Planted history the agent must not see.
    host.storage.save_full_history("forgetful", "s1", [{"role": "user", "content": "old"}])
    result = host.run_agent("forgetful", "hello", session_id="s1")
    assert result.reply.startswith("[fake-1] 1 message(s) seen")
    assert host.storage.load_history("forgetful", "s1") == [{"role": "user", "content": "old"}]
    assert count_rows(env, "versions", "conversation") == 1


def test_persistence_off_runs_with_no_database_at_all(monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
    monkeypatch.delenv("AURITE_ENABLE_DB", raising=False)
    # Nothing answers on port 1: any attempt to connect would fail the test.
    monkeypatch.setenv("AURITE_DB_URL", "host=127.0.0.1 port=1 connect_timeout=1")
    host = agent_host.AgentHost.from_env()
    assert host.storage is None
    assert host.load_config_files(project) is None
    host.register_agent({"name": "late", "llm_config_id": "fake", "include_history": True})
    host.run_agent("weather", "first", session_id="s1")
    result = host.run_agent("weather", "second", session_id="s1")
    assert result.reply == "[fake-1] 1 message(s) seen; you said: second"


@pytest.mark.servers
def test_the_example_runs_as_a_script_with_and_without_persistence(env: DocStore, docstore_dsn: str) -> None:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if "PYTHONPATH" in os.environ:  # the code under test, where a shared venv installs another
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    on = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "AURITE_ENABLE_DB": "1", "AURITE_DB_URL": docstore_dsn, "AURITE_DB_SCHEMA": env.schema},
    )
    assert on.returncode == 0, on.stderr
    assert "persistence: on" in on.stdout
    assert "3 message(s) seen; you said: And tomorrow?" in on.stdout
    off = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, env=base)
    assert off.returncode == 0, off.stderr
    assert "persistence: off" in off.stdout
    assert "1 message(s) seen; you said: And tomorrow?" in off.stdout
