"""prune must not delete a write it has just let through.

Deterministic: a trigger of the test's own on the test schema's documents table holds
prune inside its statement (deleting head "a", after taking its snapshot and before it
locks head "b") until the test has appended to "b" and seen the append return.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from pydantic import BaseModel

from docstore import DocStore

LOCK = 7713013


class Message(BaseModel):
    text: str


def test_prune_leaves_alone_a_head_written_after_it_began(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    direct = docstore_factory()
    direct.register("chat", Message, mode="log")
    s = f'"{direct.schema}"'
    for name in ("a", "b"):
        direct.append("chat", name, [{"text": f"{name} 1"}])
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE {s}.documents SET updated_at = now() - interval '60 days'")
        conn.execute(f"""
            CREATE FUNCTION {s}.pace() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_advisory_xact_lock({LOCK}); RETURN OLD; END $$""")
        conn.execute(f"""CREATE TRIGGER pace BEFORE DELETE ON {s}.documents FOR EACH ROW
                         WHEN (OLD.name = 'a') EXECUTE FUNCTION {s}.pace()""")
    # Nested loops, so that prune locks its rows one at a time, as a large prune does.
    pruner = DocStore.connect(
        docstore_dsn,
        schema=direct.schema,
        min_size=1,
        max_size=1,
        kwargs={"options": "-c enable_hashjoin=off -c enable_mergejoin=off"},
    )
    pruner.register("chat", Message, mode="log")
    gate = psycopg.connect(docstore_dsn, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
    pruned: list[Any] = []
    thread = threading.Thread(
        target=lambda: pruned.append(
            pruner.prune_documents("chat", older_than=timedelta(days=30), batch_size=10)
        )
    )
    try:
        thread.start()
        _wait_for_advisory_waiter(gate)
        version = direct.append("chat", "b", [{"text": "b 2"}])
        assert version == 2
    finally:
        gate.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
        thread.join(30)
        gate.close()
        pruner.close()
    assert pruned == [1]  # "a" only
    # The append that returned is durable, and the log takes more.
    assert [m.text for m in direct.read("chat", "b")] == ["b 1", "b 2"]
    assert direct.append("chat", "b", [{"text": "b 3"}]) == 3
    assert [d.name for d in direct.list("chat")] == ["b"]


def _wait_for_advisory_waiter(conn: psycopg.Connection[Any]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
            (LOCK,),
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.02)
    raise AssertionError("prune never reached the paced delete")
