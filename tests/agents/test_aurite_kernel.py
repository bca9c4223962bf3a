"""The framework's whole kernel on docstore: real agent turns through ``Aurite()``.

tests/agents/aurite_kernel_script.py runs the same script of agent turns, a streamed turn, a
linear workflow of two agents, listings and a cascade delete in a process of its own,
three times: with ``install()``, with ``attach()``, and on the framework's own SQLAlchemy
storage (a SQLite file). The LLM is a stand-in server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from llm_standin import StandInLLM, reply_to
from psycopg import sql

# Runs the framework aurite in processes of its own (docs/contributing.md, markers).
pytestmark = [pytest.mark.servers, pytest.mark.framework]

SCRIPT = Path(__file__).with_name("aurite_kernel_script.py")
MODES = ("install", "attach", "aurite")


def project(root: Path) -> Path:
    """A folder the framework takes for a project (its ``.aurite`` anchor), holding no configs."""
    root.mkdir(parents=True)
    (root / ".aurite").write_text('[aurite]\ntype = "project"\n')
    return root


def framework_env(dsn: str, schema: str, root: Path, api_base: str) -> dict[str, str]:
    """The environment a host of the framework sets, for one schema of the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AURITE_", "DOCSTORE_"))}
    env.update(
        AURITE_ENABLE_DB="true",
        AURITE_DB_URL=dsn,
        AURITE_DB_SCHEMA=schema,
        AURITE_DB_PATH=str(root / "own-storage.db"),  # the framework's own storage, in its mode
        CACHE_DIR=str(root / "cache"),
        STANDIN_API_BASE=api_base,
        STANDIN_KEY="sk-local-standin",
        HOME=str(root),  # no user-level ~/.aurite
    )
    return env


@pytest.fixture(scope="module")
def runs(docstore_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """mode -> (the script's report, the requests its LLM received, its project folder).
    The three runs go at once (a stand-in server each): most of their time is importing
    the framework."""
    schemas = {mode: f"t_{uuid.uuid4().hex[:16]}" for mode in MODES}
    with contextlib.ExitStack() as stack:
        started = {}
        for mode in MODES:
            llm = stack.enter_context(StandInLLM())
            root = project(tmp_path_factory.mktemp(mode) / "project")
            child = subprocess.Popen(
                [sys.executable, str(SCRIPT), mode],
                cwd=root,
                env=framework_env(docstore_dsn, schemas[mode], root, llm.api_base),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            started[mode] = (child, llm, root)
        out: dict[str, Any] = {}
        for mode, (child, llm, root) in started.items():
            stdout, stderr = child.communicate(timeout=120)
            assert child.returncode == 0, f"{mode}: {stderr[-4000:]}"
            out[mode] = (json.loads(stdout), list(llm.requests), root)
    yield out
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        for schema in schemas.values():
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def on_docstore(runs: dict[str, Any], mode: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    report, requests, _ = runs[mode]
    return report, requests


@pytest.mark.parametrize("mode", ["install", "attach"])
def test_the_kernel_keeps_its_sessions_in_docstore(runs: dict[str, Any], mode: str) -> None:
    report, _ = on_docstore(runs, mode)
    assert report["storage"] == ("AuriteStorage" if mode == "install" else "StorageManager")
    if mode == "attach":
        assert report["attached"] is True


@pytest.mark.parametrize("mode", ["install", "attach"])
def test_three_turns_send_the_llm_the_whole_earlier_conversation(runs: dict[str, Any], mode: str) -> None:
    report, requests = on_docstore(runs, mode)
    sent = [[(m["role"], m["content"]) for m in r["messages"]] for r in requests[:3]]
    system = ("system", "You are chatty.")
    one, two, three = ("user", "one"), ("user", "two"), ("user", "three")
    a1 = ("assistant", reply_to([{"role": "user", "content": "one"}] * 2))
    a2 = ("assistant", reply_to([{"role": "user", "content": "two"}] * 4))
    assert sent == [[system, one], [system, one, a1, two], [system, one, a1, two, a2, three]]
    assert [turn[:2] for turn in report["turns"]] == [["success", "agent-s1"]] * 3
    history = report["histories"]["agent-s1"]
    assert [(m["role"], m["content"]) for m in history][-2:] == [three, ("assistant", report["turns"][2][2])]
    assert len(history) == 6


@pytest.mark.parametrize("mode", ["install", "attach"])
def test_a_fresh_kernel_with_an_empty_cache_reads_the_same_history(runs: dict[str, Any], mode: str) -> None:
    report, _ = on_docstore(runs, mode)
    assert report["fresh_history"] == report["histories"]["agent-s1"]
    # Configs stay where the framework found them with attach(); install() keeps them in
    # docstore, runtime registrations included.
    assert report["fresh_config"] is (mode == "install")


@pytest.mark.parametrize("mode", ["install", "attach"])
def test_a_streamed_turn_and_a_linear_workflow_of_two_agents_are_saved(
    runs: dict[str, Any], mode: str
) -> None:
    report, _ = on_docstore(runs, mode)
    assert report["streamed_events"] > 2
    assert [m["role"] for m in report["histories"]["agent-s3"]] == ["user", "assistant"]
    status, session_id, output = report["workflow"]
    assert (status, session_id) == ("completed", "workflow-wf1")
    assert output == reply_to(
        [{"role": "user", "content": reply_to([{"role": "user", "content": "a plan"}] * 2)}] * 2
    )
    [workflow] = report["list_workflow"]["sessions"]
    assert (workflow["name"], workflow["is_workflow"], workflow["message_count"]) == ("plan-write", True, 4)


@pytest.mark.parametrize("mode", ["install", "attach"])
def test_listing_filters_and_pages_and_a_workflow_delete_cascades(runs: dict[str, Any], mode: str) -> None:
    report, _ = on_docstore(runs, mode)
    ids = [s["session_id"] for s in report["list_all"]["sessions"]]
    assert ids == ["workflow-wf1", "workflow-wf1-1", "workflow-wf1-0", "agent-s3", "agent-s2", "agent-s1"]
    assert report["list_all"]["total"] == 6
    assert [s["session_id"] for s in report["list_chatty"]["sessions"]] == ["agent-s3", "agent-s1"]
    assert report["list_chatty"]["total"] == 2
    assert [s["session_id"] for s in report["list_page"]["sessions"]] == ids[1:3]
    assert report["list_page"]["total"] == 6
    assert report["deleted"] is True
    assert [s["session_id"] for s in report["after_delete"]["sessions"]] == [
        "agent-s3",
        "agent-s2",
        "agent-s1",
    ]


@pytest.mark.parametrize("mode", ["install", "attach"])
def test_docstore_gives_the_framework_what_its_own_storage_gives(runs: dict[str, Any], mode: str) -> None:
    report, requests = on_docstore(runs, mode)
    own, own_requests, _ = runs["aurite"]
    same = ["turns", "streamed_events", "workflow", "histories", "fresh_history", "deleted"]
    same += ["list_all", "list_chatty", "list_workflow", "list_page", "after_delete"]
    assert {k: report[k] for k in same} == {k: own[k] for k in same}
    assert [r["messages"] for r in requests] == [r["messages"] for r in own_requests]


def test_install_keeps_the_framework_s_config_index_in_docstore(runs: dict[str, Any]) -> None:
    report, _, root = runs["install"]
    configs = report["configs"]
    # The kernel's and the ConfigManager's storage are docstore's, on one store; aurite
    # made no engine of its own and no SQLite file.
    assert configs["same_storage"] and configs["engine"] == "DocStore"
    assert configs["no_sqlalchemy_engine"] and configs["no_sqlite_file"]
    assert not (root / "own-storage.db").exists()
    # A component registered at run time is stored, validated, as a version.
    assert configs["registered"] == [1, "in-memory"]
    # create_component, update_component (a new version), a refused config (nothing
    # stored, and update_component says False), delete_config (a tombstone version).
    assert configs["created"] and configs["updated"] and configs["made"] == [2, "m2"]
    assert configs["bad_create"] == "DocumentInvalid" and configs["bad_stored"] is False
    assert configs["bad_update"] is False and configs["made_after_bad"] == 2
    assert configs["deleted"] is True and configs["made_versions"] == [False, False, True]
    assert configs["same_name_other_type"] == 1
    # Ten refresh() calls share the process's pool.
    assert configs["new_connections"] <= 1
    assert configs["index_after_refresh"] == ["chatty", "helper", "made", "planner", "writer"]
