"""One script of real agent turns through the framework's own ``Aurite()``, run in a process
of its own (``install()`` patches the framework for the whole process) and reporting what
the framework gave back as JSON on stdout.

``python aurite_kernel_script.py MODE`` where MODE is ``install`` (docstore via
``docstore.agents.aurite.install()``), ``attach`` (``attach()`` after ``Aurite()``) or
``aurite`` (the framework's own SQLAlchemy storage, for comparison). The LLM is the
stand-in server whose ``api_base`` is in ``STANDIN_API_BASE``; the project folder is the
working directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, cast

MODE = sys.argv[1]

if MODE == "install":
    from docstore.agents.aurite import install

    assert install() is True

from aurite import Aurite  # noqa: E402  (after install(), as a host does)
from aurite.lib.models.config.components import AgentConfig, LLMConfig, WorkflowConfig  # noqa: E402

API_BASE = os.environ["STANDIN_API_BASE"]


def metadata(meta: Any) -> dict[str, Any]:
    """A session's metadata as the framework lists it, without times."""
    return {
        "session_id": meta.session_id,
        "name": meta.name,
        "is_workflow": meta.is_workflow,
        "message_count": meta.message_count,
        "base_session_id": meta.base_session_id,
        "agents_involved": meta.agents_involved,
    }


def listing(sessions: Any, **filters: Any) -> dict[str, Any]:
    result = sessions.get_sessions_list(**filters)
    return {"total": result["total"], "sessions": [metadata(m) for m in result["sessions"]]}


def connections(store: Any) -> int:
    with store.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) - 1  # less the one asking


def configs(kernel_app: Any) -> dict[str, Any]:
    """What install() does to the framework's config index (database mode)."""
    import gc

    from sqlalchemy.engine import Engine

    from docstore import DocStoreError, DocumentNotFound

    kernel = kernel_app.kernel
    manager = kernel.config_manager
    store = kernel.storage_manager.store
    out: dict[str, Any] = {
        "same_storage": type(manager._storage_manager).__name__ == "AuriteStorage"
        and manager._storage_manager.store is store,
        "engine": type(kernel._db_engine).__name__,
        "no_sqlalchemy_engine": not any(isinstance(o, Engine) for o in gc.get_objects()),
        "no_sqlite_file": not Path(os.environ["AURITE_DB_PATH"]).exists() and not Path(".aurite_db").exists(),
    }
    registered = store.get("agent", "chatty")
    out["registered"] = [registered.version, registered.data.model_dump().get("_source_file")]
    made = {"type": "llm", "name": "made", "provider": "openai", "model": "m1"}
    out["created"] = manager.create_component("llm", dict(made)) is not None
    out["updated"] = manager.update_component("llm", "made", {**made, "model": "m2"})
    doc = store.get("llm", "made")
    out["made"] = [doc.version, doc.data.model]
    # A config the framework's model refuses: an error, and nothing stored.
    try:
        manager.create_component("agent", {"type": "agent", "name": "bad", "max_iterations": "many"})
        out["bad_create"] = "stored"
    except DocStoreError as exc:
        out["bad_create"] = type(exc).__name__
    out["bad_update"] = manager.update_component("llm", "made", {**made, "temperature": "hot"})
    out["made_after_bad"] = store.get("llm", "made").version
    try:
        store.get("agent", "bad")
        out["bad_stored"] = True
    except DocumentNotFound:
        out["bad_stored"] = False
    # A name two types share: deleting one leaves the other (aurite's table knows no type).
    manager.create_component("agent", {"type": "agent", "name": "made", "llm_config_id": "local"})
    out["deleted"] = manager.delete_config("llm", "made")
    out["same_name_other_type"] = store.get("agent", "made").version
    out["made_versions"] = [v.deleted for v in store.versions("llm", "made")]
    before = connections(store)
    for _ in range(10):
        manager.refresh()
    out["new_connections"] = connections(store) - before
    out["index_after_refresh"] = sorted(manager.get_all_configs().get("agent", {}))
    return out


async def main() -> dict[str, Any]:
    report: dict[str, Any] = {}
    kernel_app = Aurite(start_dir=Path.cwd(), disable_logging=True)
    storage = None
    if MODE == "attach":
        from docstore.agents.aurite import attach

        storage = attach(kernel_app)
        report["attached"] = cast(Any, kernel_app.kernel.storage_manager) is storage
    await kernel_app.register_llm(
        LLMConfig(
            name="local", provider="openai", model="standin", api_base=API_BASE, api_key_env_var="STANDIN_KEY"
        )
    )
    for name in ("chatty", "helper", "planner", "writer"):
        await kernel_app.register_agent(
            AgentConfig(
                name=name, llm_config_id="local", include_history=True, system_prompt=f"You are {name}."
            )
        )
    await kernel_app.register_linear_workflow(
        WorkflowConfig(name="plan-write", steps=["planner", "writer"], include_history=True)
    )
    kernel = kernel_app.kernel
    report["storage"] = type(kernel.storage_manager).__name__
    report["turns"] = []
    for question in ("one", "two", "three"):
        result = await kernel_app.run_agent("chatty", question, session_id="agent-s1")
        report["turns"].append([result.status, result.session_id, result.primary_text])
    await kernel_app.run_agent("helper", "hello", session_id="agent-s2")
    streamed = [
        event
        async for event in kernel_app.stream_agent("chatty", "streamed", session_id="agent-s3")
        if event.get("type") in ("llm_response", "llm_response_stop", "session_info")
    ]
    report["streamed_events"] = len(streamed)
    workflow = await kernel.execution.run_linear_workflow(
        workflow_name="plan-write", initial_input="a plan", session_id="wf1"
    )
    report["workflow"] = [workflow.status, workflow.session_id, workflow.final_output]

    if MODE == "install":
        report["configs"] = configs(kernel_app)

    sessions = kernel.execution._session_manager
    report["histories"] = {
        sid: sessions.get_session_history(sid) for sid in ("agent-s1", "agent-s2", "agent-s3")
    }
    report["list_all"] = listing(sessions)
    report["list_chatty"] = listing(sessions, agent_name="chatty")
    report["list_workflow"] = listing(sessions, workflow_name="plan-write")
    report["list_page"] = listing(sessions, limit=2, offset=1)

    # A new host process: a fresh kernel with an empty cache reads what the first saved.
    with tempfile.TemporaryDirectory() as elsewhere:
        fresh = Aurite(start_dir=Path(elsewhere), disable_logging=True)
        if MODE == "attach":
            from docstore.agents.aurite import attach

            attach(fresh, storage)
        fresh_sessions = fresh.kernel.execution._session_manager
        report["fresh_history"] = fresh_sessions.get_session_history("agent-s1")
        report["fresh_config"] = fresh.kernel.config_manager.get_config("agent", "chatty") is not None
        await fresh.kernel.shutdown()  # type: ignore[no-untyped-call]

    report["deleted"] = sessions.delete_session("workflow-wf1")
    report["after_delete"] = listing(sessions)
    await kernel.shutdown()  # type: ignore[no-untyped-call]
    if storage is not None:
        storage.close()
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), default=str))
