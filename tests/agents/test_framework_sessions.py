"""docstore as aurite 0.4.2's storage: its StorageManager interface, driven by aurite's own
SessionManager, CacheManager and result models (the real package, no stand-ins)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import agent_fixtures
import orjson
import pytest
from agent_fixtures import count_rows
from aurite.lib.models.api.responses import (
    AgentRunResult,
    GraphWorkflowExecutionResult,
    GraphWorkflowNodeResult,
    LinearWorkflowExecutionResult,
    LinearWorkflowStepResult,
)
from aurite.lib.storage.sessions.cache_manager import CacheManager
from aurite.lib.storage.sessions.session_manager import SessionManager
from openai.types.chat import ChatCompletionMessage
from psycopg import sql

from docstore import DocStore, DocumentInvalid
from docstore.agents import StorageManager, _layout

# Needs the agent framework aurite (docs/contributing.md, markers).
pytestmark = pytest.mark.framework

db = agent_fixtures.db
manager = agent_fixtures.manager


def tool_turn(i: int) -> list[dict[str, Any]]:
    """One turn as aurite's agent writes it: user, a bare tool call (no content key), the
    tool's answer (with name), the assistant's reply."""
    return [
        {"role": "user", "content": f"question {i}: what is the weather in city {i}?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": "weather", "arguments": orjson.dumps({"city": i}).decode()},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": f"call_{i}",
            "name": "weather",
            "content": f"sunny, {10 + i} degrees",
        },
        {"role": "assistant", "content": f"It is sunny in city {i}, {10 + i} degrees."},
    ]


def agent_result(agent: str, session_id: str, history: list[dict[str, Any]], **extra: Any) -> AgentRunResult:
    return AgentRunResult(
        status="success",
        conversation_history=history,
        final_response=ChatCompletionMessage(role="assistant", content=history[-1].get("content")),
        session_id=session_id,
        agent_name=agent,
        **extra,
    )


def record(
    session_id: str, execution_result: dict[str, Any], *, name: str, result_type: str = "agent", **extra: Any
) -> dict[str, Any]:
    """A session record as aurite's SessionManager._save_result builds it."""
    return {
        "session_id": session_id,
        "execution_result": execution_result,
        "name": name,
        "result_type": result_type,
        "message_count": len(execution_result.get("conversation_history", [])),
        **extra,
    }


def fresh_host(tmp_path: Path, storage: StorageManager, label: str) -> SessionManager:
    """aurite's SessionManager as a new host process builds it: an empty cache directory."""
    cache_dir = tmp_path / label
    assert not cache_dir.exists()
    # aurite types the parameter as its own StorageManager; docstore's stands in for it
    # by having the same methods.
    stand_in: Any = storage
    return SessionManager(CacheManager(cache_dir=cache_dir), storage_manager=stand_in)


# --- the storage interface, sync and async ------------------------------------------------


def test_an_agent_session_round_trips_as_it_was_saved(manager: Any) -> None:
    history = tool_turn(1) + tool_turn(2)
    saved = record(
        "s1", agent_result("weather", "s1", history).model_dump(), name="weather", base_session_id="s1"
    )
    assert manager.save_session(saved) is True
    got = manager.get_session("s1")
    assert got["execution_result"] == saved["execution_result"]
    assert (
        got["session_id"],
        got["base_session_id"],
        got["name"],
        got["result_type"],
        got["message_count"],
        got["agents_involved"],
    ) == ("s1", "s1", "weather", "agent", 8, None)
    assert got["created_at"] <= got["last_updated"]
    assert "+" not in got["created_at"]  # naive UTC, as the framework writes it
    assert manager.get_session_history("s1") == history
    assert manager.get_session("nope") is None
    assert manager.get_session_history("nope") is None


def test_a_failed_run_keeps_its_exception_as_text(manager: Any) -> None:
    result = AgentRunResult(
        status="error",
        conversation_history=[{"role": "user", "content": "hi"}],
        error_message="boom",
        session_id="e1",
        agent_name="weather",
        exception=RuntimeError("boom"),
    ).model_dump()
    manager.save_session(record("e1", result, name="weather"))
    got = manager.get_session("e1")["execution_result"]
    assert got == {**result, "exception": "boom"}


def test_the_session_and_history_apis_address_one_session(manager: Any) -> None:
    turn1, turn2 = tool_turn(1), tool_turn(2)
    assert manager.save_full_history("weather", "s1", turn1) == 4
    got = manager.get_session("s1")
    assert got["execution_result"] == {"conversation_history": turn1, "agent_name": "weather"}
    assert (got["name"], got["result_type"], got["message_count"]) == ("weather", "agent", 4)
    manager.save_session(
        record("s1", agent_result("weather", "s1", turn1 + turn2).model_dump(), name="weather")
    )
    assert manager.load_history("weather", "s1", limit=0) == turn1 + turn2
    assert manager.load_history("another-agent-name", "s1", limit=2) == turn2[2:]
    [row], total = manager.get_sessions_list(agent_name="weather")
    assert (row["session_id"], row["message_count"], total) == ("s1", 8, 1)


def test_a_save_that_extends_the_conversation_appends_only_the_new_messages(
    manager: Any, db: DocStore
) -> None:
    history: list[dict[str, Any]] = []
    for i in range(5):
        history += tool_turn(i)
        manager.save_session(
            record("s1", agent_result("weather", "s1", history).model_dump(), name="weather")
        )
    assert count_rows(db, "versions", "conversation", "s1") == 20
    head = db.get("conversation", "s1")
    # Re-saving the same record writes nothing.
    manager.save_session(record("s1", agent_result("weather", "s1", history).model_dump(), name="weather"))
    again = db.get("conversation", "s1")
    assert (again.version, again.updated_at) == (head.version, head.updated_at)
    # An edited history is not a prefix: it replaces the live messages (kept by version).
    manager.save_session(
        record("s1", agent_result("weather", "s1", tool_turn(9)).model_dump(), name="weather")
    )
    assert manager.get_session_history("s1") == tool_turn(9)


def test_workflow_results_round_trip_unchanged(manager: Any) -> None:
    child_a = agent_result(
        "planner",
        "wf1-0",
        tool_turn(1),
    ).model_dump()
    child_b = agent_result("writer", "wf1-1", tool_turn(2)).model_dump()
    linear = LinearWorkflowExecutionResult(
        workflow_name="plan-and-write",
        status="completed",
        session_id="wf1",
        final_output="done",
        step_results=[
            LinearWorkflowStepResult(step_name="planner", step_type="agent", result=child_a),
            LinearWorkflowStepResult(step_name="writer", step_type="agent", result=child_b),
        ],
    ).model_dump()
    graph = GraphWorkflowExecutionResult(
        workflow_name="graph",
        status="completed",
        session_id="g1",
        node_results={"n1": GraphWorkflowNodeResult(name="planner", type="agent", result=child_a)},
    ).model_dump()
    involved = {"wf1-0": "planner", "wf1-1": "writer"}
    manager.save_session(
        record(
            "wf1",
            linear,
            name="plan-and-write",
            result_type="workflow",
            base_session_id="wf1",
            agents_involved=involved,
            message_count=8,
        )
    )
    manager.save_session(record("g1", graph, name="graph", result_type="workflow", message_count=4))
    got = manager.get_session("wf1")
    assert got["execution_result"] == linear
    assert (got["agents_involved"], got["message_count"], got["result_type"]) == (involved, 8, "workflow")
    assert manager.get_session("g1")["execution_result"] == graph
    assert manager.get_session_history("wf1") is None  # as the framework's storage says
    # Saved again unchanged, then changed: the head follows.
    manager.save_session(
        record(
            "wf1",
            linear,
            name="plan-and-write",
            result_type="workflow",
            base_session_id="wf1",
            agents_involved=involved,
        )
    )
    assert manager.get_session("wf1")["execution_result"] == linear


def test_sessions_list_filters_really_filter_newest_first_with_the_total(manager: Any) -> None:
    for i in range(3):
        manager.save_session(
            record(f"a{i}", agent_result("weather", f"a{i}", tool_turn(i)).model_dump(), name="weather")
        )
    manager.save_session(record("b0", agent_result("news", "b0", tool_turn(0)).model_dump(), name="news"))
    manager.save_session(
        record(
            "w0",
            {"workflow_name": "weather", "status": "completed", "step_results": []},
            name="weather",
            result_type="workflow",
        )
    )
    rows, total = manager.get_sessions_list(agent_name="weather")
    assert ([r["session_id"] for r in rows], total) == (["a2", "a1", "a0"], 3)
    assert not any(r["is_workflow"] for r in rows)
    rows, total = manager.get_sessions_list(workflow_name="weather")
    assert ([(r["session_id"], r["is_workflow"]) for r in rows], total) == ([("w0", True)], 1)
    rows, total = manager.get_sessions_list(limit=2, offset=1)
    assert ([r["session_id"] for r in rows], total) == (["b0", "a2"], 5)
    assert manager.get_sessions_list(agent_name="nobody") == ([], 0)
    with pytest.raises(ValueError, match="limit"):
        manager.get_sessions_list(limit=-1)


def test_deleting_a_workflow_takes_its_agents_sessions_and_nothing_else(manager: Any, db: DocStore) -> None:
    for sid, agent in (("wf1-0", "planner"), ("wf1-1", "writer"), ("other", "planner")):
        manager.save_session(
            record(
                sid,
                agent_result(agent, sid, tool_turn(1)).model_dump(),
                name=agent,
                base_session_id="wf1" if sid != "other" else "other",
            )
        )
    manager.save_session(
        record(
            "wf1",
            {"workflow_name": "w", "status": "completed", "step_results": []},
            name="w",
            result_type="workflow",
            base_session_id="wf1",
        )
    )
    before = manager.get_session("wf1-0")
    assert manager.delete_session("wf1") is True
    assert [manager.get_session(s) for s in ("wf1", "wf1-0", "wf1-1")] == [None] * 3
    assert manager.get_sessions_list() == ([list_row_of(manager, "other")], 1)
    assert manager.get_session_history("wf1-0") is None and manager.load_history("planner", "wf1-0") == []
    assert manager.delete_session("wf1") is False
    # A tombstone, not a loss: every message is still in the tables, and comes back.
    assert count_rows(db, "versions", "conversation") == 12
    assert manager.restore_session("wf1") is True
    # As saved; last_updated is the restore's, so the next cleanup does not hide it again.
    after = manager.get_session("wf1-0")
    assert after["last_updated"] > before["last_updated"]
    assert {**after, "last_updated": None} == {**before, "last_updated": None}
    assert manager.get_sessions_list()[1] == 4
    # An agent's own session goes alone; only docstore's retention removes it for good.
    assert manager.delete_session("other") is True
    assert manager.get_session("wf1-0") is not None
    db.purge("conversation", ["other"])
    assert manager.restore_session("other") is False
    assert count_rows(db, "versions", "conversation") == 8


def list_row_of(manager: Any, session_id: str) -> dict[str, Any]:
    """The session's row of get_sessions_list, as listed alone."""
    [row] = [r for r in manager.get_sessions_list(limit=1000)[0] if r["session_id"] == session_id]
    return dict(row)


def test_cleanup_drops_old_sessions_then_keeps_the_newest(manager: Any, db: DocStore) -> None:
    for i in range(6):
        manager.save_session(
            record(f"s{i}", agent_result("weather", f"s{i}", tool_turn(i)).model_dump(), name="weather")
        )
    with db.pool.connection() as conn:
        conn.execute(
            f'UPDATE "{db.schema}".documents SET updated_at = now() - interval '
            "'40 days' WHERE kind = 'conversation' AND name IN ('s0', 's1')"
        )
    assert manager.cleanup_old_sessions(days=30, max_sessions=3) == 3
    rows, total = manager.get_sessions_list()
    assert ([r["session_id"] for r in rows], total) == (["s5", "s4", "s3"], 3)
    # Hidden, not lost: the framework runs this on every history listing, so a user's
    # sessions must survive it until docstore's own retention says otherwise.
    assert count_rows(db, "versions", "conversation") == 24
    assert manager.cleanup_old_sessions(days=30, max_sessions=3) == 0
    assert manager.restore_session("s1") is True
    assert manager.get_session_history("s1") == tool_turn(1)
    # A hidden session's retention clock starts at its hiding (a bin emptied later).
    assert db.prune_documents("conversation", older_than=timedelta(days=1)) == 0
    db.purge("conversation", ["s0"])
    assert manager.restore_session("s0") is False
    # A session cleaned up starts afresh when the host saves it again.
    manager.save_session(
        record("s0", agent_result("weather", "s0", tool_turn(0)).model_dump(), name="weather")
    )
    assert manager.get_session_history("s0") == tool_turn(0)


def test_qa_results_round_trip_list_newest_first_and_delete(manager: Any) -> None:
    for i, (config, ctype) in enumerate([("eval-a", "agent"), ("eval-a", "workflow"), ("eval-b", "agent")]):
        assert (
            manager.save_qa_result(
                {
                    "result_id": f"qa_{i}",
                    "evaluation_config_id": config,
                    "component_type": ctype,
                    "overall_score": 0.5 + i / 10,
                    "status": "success",
                    "result": {"cases": [{"input": "x", "passed": True, "score": None}]},
                }
            )
            is True
        )
    got = manager.get_qa_result("qa_1")
    assert got["result"] == {"cases": [{"input": "x", "passed": True, "score": None}]}
    assert (got["evaluation_config_id"], got["component_type"], got["overall_score"]) == (
        "eval-a",
        "workflow",
        0.6,
    )
    rows, total = manager.get_qa_results_list(evaluation_config_id="eval-a")
    assert ([r["result_id"] for r in rows], total) == (["qa_1", "qa_0"], 2)
    assert "result" not in rows[0]
    rows, total = manager.get_qa_results_list(evaluation_config_id="eval-a", component_type="agent")
    assert ([r["result_id"] for r in rows], total) == (["qa_0"], 1)
    assert manager.delete_qa_result("qa_0") is True
    assert manager.delete_qa_result("qa_0") is False
    assert manager.get_qa_result("qa_0") is None
    assert manager.get_qa_results_list()[1] == 2
    with pytest.raises(DocumentInvalid, match="result_id"):
        manager.save_qa_result({"evaluation_config_id": "eval-a"})


def test_a_session_without_an_id_is_refused_not_dropped(manager: Any) -> None:
    with pytest.raises(DocumentInvalid, match="session_id"):
        manager.save_session({"execution_result": {"conversation_history": []}})


# --- aurite's own SessionManager on it ----------------------------------------------------


def test_aurites_session_manager_runs_on_docstore_in_database_mode(db: DocStore, tmp_path: Path) -> None:
    storage = StorageManager(DocStore(db.pool, schema=db.schema))
    host = fresh_host(tmp_path, storage, "host1")
    assert host._use_db  # it took docstore as its database

    # An agent run, the way the engine saves one: the user's message first, then the result.
    history = tool_turn(1)
    host.add_message_to_history("agent-1", history[0], agent_name="weather")
    host.save_agent_result("agent-1", agent_result("weather", "agent-1", history), base_session_id="agent-1")
    # A workflow whose agents have sessions of their own.
    steps = []
    for i, agent in enumerate(("planner", "writer")):
        child = agent_result(agent, f"wf-{i}", tool_turn(10 + i))
        host.save_agent_result(f"wf-{i}", child, base_session_id="wf")
        steps.append(LinearWorkflowStepResult(step_name=agent, step_type="agent", result=child.model_dump()))
    workflow = LinearWorkflowExecutionResult(
        workflow_name="pipeline", status="completed", step_results=steps, session_id="wf", final_output="done"
    )
    host.save_workflow_result("wf", workflow, base_session_id="wf")

    # A new host process: a fresh cache, so everything below comes from the database.
    again = fresh_host(tmp_path, StorageManager(DocStore(db.pool, schema=db.schema)), "host2")
    assert again.get_session_history("agent-1") == history
    assert again.get_session_result("wf") == workflow.model_dump()
    meta = again.get_session_metadata("wf")
    assert meta is not None and meta.is_workflow
    assert meta.agents_involved == {"wf-0": "planner", "wf-1": "writer"}
    assert meta.message_count == 8
    listing = again.get_sessions_list(agent_name="planner")
    assert [s.session_id for s in listing["sessions"]] == ["wf-0"]
    assert [s.session_id for s in again.get_sessions_list(workflow_name="pipeline")["sessions"]] == ["wf"]
    assert again.get_sessions_list()["total"] == 4
    details, found = again.get_full_session_details("agent-1")
    assert details == agent_result("weather", "agent-1", history).model_dump()
    assert found is not None and found.name == "weather"

    # Deleting the workflow takes its agents' sessions with it, in the database too.
    assert again.delete_session("wf") is True
    third = fresh_host(tmp_path, StorageManager(DocStore(db.pool, schema=db.schema)), "host3")
    assert [s.session_id for s in third.get_sessions_list()["sessions"]] == ["agent-1"]

    # Cleanup through the framework keeps the newest max_sessions.
    third.save_agent_result("agent-2", agent_result("weather", "agent-2", tool_turn(5)))
    third.cleanup_old_sessions(days=30, max_sessions=1)
    assert [s.session_id for s in third.get_sessions_list()["sessions"]] == ["agent-2"]


def test_a_session_saved_after_every_turn_holds_linear_bytes(db: DocStore, tmp_path: Path) -> None:
    storage = StorageManager(DocStore(db.pool, schema=db.schema))
    host = fresh_host(tmp_path, storage, "host")
    history: list[dict[str, Any]] = []
    stored: dict[int, int] = {}
    for turn in range(1, 41):
        history += tool_turn(turn)
        host.save_agent_result("long", agent_result("weather", "long", history), base_session_id="long")
        if turn in (20, 40):
            stored[turn] = stored_bytes(db, "long")
    message_bytes = sum(len(orjson.dumps(m)) for m in history)
    # Each message is stored once (jsonb text adds a space after each ':' and ','), and the
    # head holds the result's other fields once: not one copy of the history per save.
    assert stored[40] < 1.3 * message_bytes + 2000
    assert stored[40] < 2.2 * stored[20]  # linear, where copies per save would be ~4x
    assert host.get_session_history("long") == history


def stored_bytes(db: DocStore, name: str) -> int:
    """JSON bytes a session holds: its head's data and every version row's data."""
    with db.pool.connection() as conn:
        row = conn.execute(
            f'SELECT (SELECT coalesce(sum(octet_length(data::text)), 0) FROM "{db.schema}".versions'
            " WHERE kind = 'conversation' AND name = %s) + (SELECT octet_length(data::text) FROM"
            f" \"{db.schema}\".documents WHERE kind = 'conversation' AND name = %s)",
            (name, name),
        ).fetchone()
    return int(row[0])


def test_the_lists_page_past_their_end_and_init_db_serves_them_from_its_indexes(
    manager: Any, db: DocStore
) -> None:
    manager.init_db()
    manager.init_db()  # idempotent: the second finds agents.sql's mark and runs nothing
    for i in range(4):
        manager.save_session(
            record(f"p{i}", agent_result("pager", f"p{i}", tool_turn(i)).model_dump(), name="pager")
        )
    rows, total = manager.get_sessions_list(agent_name="pager", limit=2, offset=3)
    assert ([r["session_id"] for r in rows], total) == (["p0"], 4)
    assert manager.get_sessions_list(limit=5, offset=10) == ([], 4)
    for i in range(3):
        manager.save_qa_result({"result_id": f"r{i}", "evaluation_config_id": "e", "result": {"i": i}})
    rows, total = manager.get_qa_results_list(evaluation_config_id="e", limit=1, offset=1)
    assert ([r["result_id"] for r in rows], total) == (["r1"], 3)
    assert manager.get_qa_results_list(limit=1, offset=7) == ([], 3)
    # Each statement's conditions and order are those of its index in agents.sql (with
    # sequential scans off, a plan without the index means they drifted apart).
    cases = [
        (_layout.sessions_page(db.schema, None, None, 50, 0), "conversation_recent_idx"),
        (_layout.sessions_page(db.schema, "pager", None, 50, 0), "conversation_by_name_idx"),
        (_layout.sessions_page(db.schema, None, "flow", 50, 0), "conversation_by_name_idx"),
        (_layout.qa_page(db.schema, {}, 50, 0), "qa_result_recent_idx"),
    ]
    with db.pool.connection() as conn:
        conn.execute("SET enable_seqscan = off")
        try:
            for (query, params), index in cases:
                plan = conn.execute(sql.SQL("EXPLAIN ") + query, params).fetchall()
                assert index in "\n".join(line for (line,) in plan), (index, plan)
        finally:
            conn.execute("RESET enable_seqscan")


def test_hosts_starting_at_once_each_finish_init_db_and_build_each_index_once(db: DocStore) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            StorageManager(DocStore(db.pool, schema=db.schema)).init_db()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.pool.connection() as conn:
        found = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "AND c.relname = ANY(%s) ORDER BY 1",
            [db.schema, ["conversation_recent_idx", "conversation_by_name_idx", "qa_result_recent_idx"]],
        ).fetchall()
    assert found == [
        ("conversation_by_name_idx", True),
        ("conversation_recent_idx", True),
        ("qa_result_recent_idx", True),
    ]
