"""The cases of aurite 0.4.2's own database history test (its repository's
``tests/integration/history/test_database_history.py``), on docstore's ``AuriteStorage``.

That file ran unmodified, with only its fixture swapped for this module's ``framework``
(a conftest patching its ``StorageManager`` name), and passed 6 of 6; its code is not
copied here. Each case below is one of its six, in the framework's own calls: its
SessionManager over a file cache, the storage built as aurite's kernel builds it
(``StorageManager(engine=...)``), timestamps aged through ``get_db_session()`` and
``db.get(SessionDB, id)``, and the engine disposed to make the database fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aurite.lib.models.api.responses import (
    AgentRunResult,
    LinearWorkflowExecutionResult,
    LinearWorkflowStepResult,
)
from aurite.lib.storage.db.db_models import SessionDB
from aurite.lib.storage.sessions.cache_manager import CacheManager
from aurite.lib.storage.sessions.session_manager import SessionManager
from openai.types.chat import ChatCompletionMessage

from docstore import DocStore
from docstore.agents.aurite import AuriteStorage

# Needs the agent framework aurite (docs/contributing.md, markers).
pytestmark = pytest.mark.framework


class Framework:
    """The framework's session layer on docstore, as its kernel wires it."""

    def __init__(self, store: DocStore, cache_dir: Path) -> None:
        self.cache = CacheManager(cache_dir=cache_dir)
        self.storage = AuriteStorage(engine=store)
        self.storage.init_db()
        self.sessions = SessionManager(cache_manager=self.cache, storage_manager=self.storage)  # type: ignore[arg-type]

    def clear_cache(self) -> None:
        """Empty the file cache, so what is read next comes from the database."""
        self.cache.clear_cache()  # type: ignore[no-untyped-call]


@pytest.fixture
def framework(docstore_factory: Callable[..., DocStore], tmp_path: Path) -> Iterator[Framework]:
    yield Framework(docstore_factory(), tmp_path / "cache")


def agent_run(session_id: str, agent: str, *texts: str) -> AgentRunResult:
    history: list[dict[str, Any]] = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)
    ]
    return AgentRunResult(
        status="success",
        final_response=ChatCompletionMessage(role="assistant", content=texts[-1]),
        conversation_history=history,
        session_id=session_id,
        agent_name=agent,
        error_message=None,
        exception=None,
    )


def step(name: str, session_id: str, agent: str) -> LinearWorkflowStepResult:
    return LinearWorkflowStepResult(
        step_name=name,
        step_type="agent",
        result={
            "status": "success",
            "final_response": {"content": f"{name} done", "role": "assistant"},
            "conversation_history": [
                {"role": "user", "content": f"do {name}"},
                {"role": "assistant", "content": f"{name} done"},
            ],
            "session_id": session_id,
            "agent_name": agent,
        },
    )


def test_a_session_saved_then_read_with_the_cache_cleared_comes_from_the_database(
    framework: Framework,
) -> None:
    framework.sessions.save_agent_result("h-001", agent_run("h-001", "Test Agent", "hi", "hello"))
    framework.clear_cache()
    result = framework.sessions.get_session_result("h-001")
    assert result is not None
    assert (result["status"], result["agent_name"], len(result["conversation_history"])) == (
        "success",
        "Test Agent",
        2,
    )


def test_sessions_list_from_the_database_with_filters_and_pages(framework: Framework) -> None:
    for i in range(3):
        framework.sessions.save_agent_result(
            f"l-{i}", agent_run(f"l-{i}", f"Agent {i % 2}", f"q{i}", f"a{i}")
        )
    workflow = LinearWorkflowExecutionResult(
        workflow_name="Test Workflow",
        status="completed",
        step_results=[step("Step 1", "wf-step-1", "Step Agent")],
        final_output="done",
        session_id="wf-1",
        error=None,
    )
    framework.sessions.save_workflow_result(session_id="wf-1", workflow_result=workflow)
    framework.clear_cache()
    everything = framework.sessions.get_sessions_list()
    assert (everything["total"], len(everything["sessions"])) == (4, 4)
    agent_0 = framework.sessions.get_sessions_list(agent_name="Agent 0")
    assert agent_0["total"] == 2
    assert all(s.name == "Agent 0" and not s.is_workflow for s in agent_0["sessions"])
    workflows = framework.sessions.get_sessions_list(workflow_name="Test Workflow")
    assert workflows["total"] == 1
    assert (workflows["sessions"][0].name, workflows["sessions"][0].is_workflow) == ("Test Workflow", True)
    page = framework.sessions.get_sessions_list(limit=2, offset=1)
    assert (len(page["sessions"]), page["total"], page["offset"], page["limit"]) == (2, 4, 1, 2)


def test_a_deleted_session_is_gone_from_cache_database_and_listings(framework: Framework) -> None:
    framework.sessions.save_agent_result("d-001", agent_run("d-001", "Deleter", "delete me", "ok"))
    assert framework.sessions.get_session_result("d-001") is not None
    assert framework.sessions.delete_session("d-001") is True
    framework.clear_cache()
    assert framework.sessions.get_session_result("d-001") is None
    assert "d-001" not in [s.session_id for s in framework.sessions.get_sessions_list()["sessions"]]
    # docstore's addition: a tombstone the framework cannot see, which restore undoes.
    assert framework.storage.restore_session("d-001") is True
    assert framework.sessions.get_session_result("d-001") is not None


def test_a_workflow_with_its_agents_sessions_reads_back_whole(framework: Framework) -> None:
    workflow = LinearWorkflowExecutionResult(
        workflow_name="Parent Workflow",
        status="completed",
        step_results=[step("one", "child-1", "Child 1"), step("two", "child-2", "Child 2")],
        final_output="done",
        session_id="parent-1",
        error=None,
    )
    framework.sessions.save_workflow_result(
        session_id="parent-1", workflow_result=workflow, base_session_id="parent-1"
    )
    framework.clear_cache()
    data = framework.sessions.get_session_result("parent-1")
    assert data is not None
    assert (data["workflow_name"], len(data["step_results"])) == ("Parent Workflow", 2)
    meta = framework.sessions.get_session_metadata("parent-1")
    assert meta is not None
    assert (meta.is_workflow, meta.name, meta.message_count) == (True, "Parent Workflow", 4)


def test_cleanup_hides_a_session_aged_through_the_framework_s_db_session(framework: Framework) -> None:
    framework.sessions.save_agent_result("old-1", agent_run("old-1", "Old Agent", "old"))
    long_ago = datetime.utcnow() - timedelta(days=35)
    with framework.storage.get_db_session() as db:
        record = db.get(SessionDB, "old-1")
        assert record is not None and record.session_id == "old-1"
        record.last_updated = long_ago
        record.created_at = long_ago
    for i in range(3):
        framework.sessions.save_agent_result(f"new-{i}", agent_run(f"new-{i}", f"New {i}", f"hi {i}"))
    framework.sessions.cleanup_old_sessions(days=30, max_sessions=10)
    assert framework.sessions.get_session_result("old-1") is None
    listed = framework.sessions.get_sessions_list()
    assert listed["total"] == 3
    assert sorted(s.session_id for s in listed["sessions"]) == ["new-0", "new-1", "new-2"]


def test_with_the_engine_disposed_and_gone_the_framework_falls_back_to_its_cache(
    framework: Framework,
) -> None:
    framework.sessions.save_agent_result("f-001", agent_run("f-001", "Fallback Agent", "fallback"))
    store = framework.storage.store
    store.dispose()  # SQLAlchemy's meaning: the pool let go, the store still usable
    assert store.get("conversation", "f-001").name == "f-001"
    framework.storage._engine = None  # type: ignore[assignment]  # the framework's "database failed"
    result = framework.sessions.get_session_result("f-001")
    assert result is not None and result["agent_name"] == "Fallback Agent"
    listed = framework.sessions.get_sessions_list()
    assert (listed["total"], listed["sessions"][0].session_id) == (1, "f-001")
