"""docstore.langgraph's checkpointers: LangGraph's own conformance suite on both, a real
StateGraph stopped at an interrupt in one process and resumed in another, and what the
tables hold (a thread's rows all named by its id: one shard's under Citus)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import EXTENDED_CAPABILITIES
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_metadata

from docstore import AsyncDocStore, DocStore
from docstore.langgraph import CHECKPOINTS, WRITES, AsyncDocStoreSaver, DocStoreSaver

SCRIPT = Path(__file__).resolve().parent / "langgraph_graph_script.py"


def _rows_by_name(store: DocStore | AsyncDocStore, pool: Any) -> dict[tuple[str, str], set[str]]:
    """(table, kind) -> the names of the checkpointer's rows, by raw SQL."""
    found: dict[tuple[str, str], set[str]] = {}
    with pool.connection() as conn:
        for table in ("documents", "versions"):
            rows = conn.execute(
                f'SELECT kind, name FROM "{store.schema}".{table} WHERE kind = ANY(%s)',
                [[CHECKPOINTS.name, WRITES.name]],
            ).fetchall()
            for kind, name in rows:
                found.setdefault((table, kind), set()).add(name)
    return found


async def _conformance(make: Any) -> Any:
    registered = checkpointer_test(name=f"docstore-{uuid.uuid4().hex[:6]}")(make)
    return await validate(registered)


def _assert_full(report: Any) -> None:
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}
    assert report.passed_all_base(), failures
    # The extended capabilities are all detected, and pass.
    for cap in EXTENDED_CAPABILITIES:
        result = report.results[cap.value]
        assert (result.detected, result.passed) == (True, True), (cap, result.failures)


async def test_async_saver_passes_langgraphs_conformance_suite_with_every_extension(
    docstore_async_store: AsyncDocStore,
) -> None:
    async def make() -> AsyncIterator[BaseCheckpointSaver[Any]]:
        yield AsyncDocStoreSaver(docstore_async_store)

    _assert_full(await _conformance(make))


async def test_sync_saver_passes_langgraphs_conformance_suite_with_every_extension(
    docstore_store: DocStore,
) -> None:
    # The suite calls the a* methods; DocStoreSaver's run its sync ones in a worker thread.
    async def make() -> AsyncIterator[BaseCheckpointSaver[Any]]:
        yield DocStoreSaver(docstore_store)

    _assert_full(await _conformance(make))


def _script(dsn: str, schema: str, thread: str, step: str, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), dsn, schema, thread, step, mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.slow
@pytest.mark.servers
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_graph_stopped_at_an_interrupt_resumes_in_a_new_process(
    mode: str, docstore_store: DocStore, docstore_dsn: str
) -> None:
    thread = f"review/{uuid.uuid4().hex[:8]}"
    first = _script(docstore_dsn, docstore_store.schema, thread, "start", mode)
    assert first == {"steps": ["draft about rain"], "next": ["review"]}

    second = _script(docstore_dsn, docstore_store.schema, thread, "resume", mode)
    assert second["steps"] == ["draft about rain", "review: approved", "published (2 steps before)"]
    assert second["history"] == 5  # input, draft, review (interrupted, then resumed), publish

    # Every row of the thread, in both tables and both kinds, is named by the thread id:
    # under Citus (distributed on name) the thread is one shard's.
    rows = _rows_by_name(docstore_store, docstore_store.pool)
    assert set(rows) == {(t, k) for t in ("documents", "versions") for k in (CHECKPOINTS.name, WRITES.name)}
    assert all(names == {thread} for names in rows.values()), rows


def _put(saver: DocStoreSaver, thread: str, parent: str | None = None, **metadata: Any) -> str:
    config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    if parent is not None:
        config["configurable"]["checkpoint_id"] = parent
    checkpoint = generate_checkpoint(channel_values={"n": len(metadata)}, channel_versions={"n": 1})
    stored = saver.put(config, checkpoint, generate_metadata(**metadata), {"n": 1})
    return str(stored["configurable"]["checkpoint_id"])


def test_delete_thread_removes_every_row_and_leaves_other_threads(docstore_store: DocStore) -> None:
    saver = DocStoreSaver(docstore_store)
    first = _put(saver, "t1")
    saver.put_writes({"configurable": {"thread_id": "t1", "checkpoint_id": first}}, [("ch", 1)], "task")
    _put(saver, "t2")

    saver.delete_thread("t1")

    assert saver.get_tuple({"configurable": {"thread_id": "t1"}}) is None
    rows = _rows_by_name(docstore_store, docstore_store.pool)
    assert all(names == {"t2"} for names in rows.values()), rows  # t1 purged, not tombstoned


def test_delete_for_runs_removes_the_runs_rows_from_the_tables(docstore_store: DocStore) -> None:
    saver = DocStoreSaver(docstore_store)
    kept = _put(saver, "t", run_id="keep")
    gone = _put(saver, "t", kept, run_id="drop")
    saver.put_writes({"configurable": {"thread_id": "t", "checkpoint_id": gone}}, [("ch", "x")], "task")

    saver.delete_for_runs(["drop"])

    assert [
        t.config["configurable"]["checkpoint_id"] for t in saver.list({"configurable": {"thread_id": "t"}})
    ] == [kept]
    # Not only hidden: the versions table keeps no row of the deleted run.
    with docstore_store.pool.connection() as conn:
        texts = conn.execute(
            f'SELECT data::text FROM "{docstore_store.schema}".versions WHERE kind = ANY(%s)',
            [[CHECKPOINTS.name, WRITES.name]],
        ).fetchall()
    assert texts and not any(gone in text for (text,) in texts)


def test_list_filters_in_the_statement_and_pages_with_before_and_limit(docstore_store: DocStore) -> None:
    saver = DocStoreSaver(docstore_store)
    ids: list[str] = []
    for step in range(6):
        ids.append(
            _put(saver, "t", ids[-1] if ids else None, step=step, source="loop" if step % 2 else "input")
        )
    config: Any = {"configurable": {"thread_id": "t"}}

    def listed(**kw: Any) -> list[str]:
        return [t.checkpoint["id"] for t in saver.list(config, **kw)]

    assert listed() == ids[::-1]
    assert listed(filter={"source": "input"}) == [ids[4], ids[2], ids[0]]
    assert listed(filter={"source": "input", "step": 2}) == [ids[2]]
    before: Any = {"configurable": {"checkpoint_id": ids[3]}}
    assert listed(before=before, limit=2) == [ids[2], ids[1]]
    # Across threads (config None): every thread's, newest first.
    other = _put(saver, "u", step=9)
    assert [t.checkpoint["id"] for t in saver.list(None, filter={"step": 9})] == [other]


def test_a_config_without_a_thread_id_is_refused_with_a_clear_error(docstore_store: DocStore) -> None:
    saver = DocStoreSaver(docstore_store)
    with pytest.raises(ValueError, match="thread_id"):
        saver.get_tuple({"configurable": {}})
    with pytest.raises(ValueError, match="strategy"):
        saver.prune(["t"], strategy="keep_some")


async def test_the_async_savers_sync_methods_work_from_another_thread_not_from_its_loop(
    docstore_async_store: AsyncDocStore,
) -> None:
    saver = AsyncDocStoreSaver(docstore_async_store)
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    stored = await saver.aput(config, generate_checkpoint(), generate_metadata(), {})
    found: list[Any] = []
    worker = threading.Thread(target=lambda: found.append(saver.get_tuple(stored)))
    worker.start()
    await asyncio.to_thread(worker.join)
    assert found[0].checkpoint["id"] == stored["configurable"]["checkpoint_id"]
    with pytest.raises(asyncio.InvalidStateError, match="use the async ones"):
        saver.get_tuple(stored)


def test_list_with_a_limit_is_exact_when_ids_were_appended_out_of_order(docstore_store: DocStore) -> None:
    # LangGraph's ids are time-ordered, so the log's newest items are the greatest ids and
    # list(limit=) reads only those; ids put out of order must still come out right.
    saver = DocStoreSaver(docstore_store)
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    ids = [f"1ef00000-0000-6000-8000-00000000000{d}" for d in "5193"]
    for checkpoint_id in ids:
        saver.put(config, generate_checkpoint(checkpoint_id=checkpoint_id), generate_metadata(), {})
    saver.put(config, generate_checkpoint(checkpoint_id=ids[1]), generate_metadata(step=7), {})  # again

    def listed(**kw: Any) -> list[str]:
        return [t.checkpoint["id"] for t in saver.list(config, **kw)]

    assert listed() == sorted(ids, reverse=True)
    assert listed(limit=2) == sorted(ids, reverse=True)[:2]
    assert listed(limit=1) == [max(ids)]
    assert listed(limit=3, before={"configurable": {"checkpoint_id": ids[0]}}) == [ids[3], ids[1]]
    # The checkpoint put twice is listed once, as put last.
    [again] = [t for t in saver.list(config) if t.checkpoint["id"] == ids[1]]
    assert again.metadata["step"] == 7
