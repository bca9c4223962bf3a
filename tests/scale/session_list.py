"""The framework's session list and cleanup at 1,000 to 1,000,000 sessions, through aurite
0.4.2's own SessionManager on docstore (issue 26, item 4).

Not part of the suite (no test_ prefix): its table is in docs/performance.md.

    .venv/bin/python tests/scale/session_list.py [SESSIONS ...]   # default 1000 20000 200000 1000000
    DOCSTORE_URL=... (else 127.0.0.1:5432/test)

For each size, a scratch schema: ten sessions saved through SessionManager (two
messages each, one per agent), then cloned by one INSERT ... SELECT per table into N
sessions (bulk: saving a million one by one would take the run's time), each a
millisecond newer than the one before; then StorageManager.init_db() (agents.sql's
indexes, built CONCURRENTLY on the loaded table, timed) and VACUUM ANALYZE. Measured,
median of REPEATS calls, wall and client CPU (time.process_time), in this order:

- the newest 50 (SessionManager.get_sessions_list(limit=50));
- filtered by agent through SessionManager, which asks the storage for up to 10,000 rows
  and filters them itself (aurite's code), and the storage's own page of 50;
- offset near the end (N - 60);
- the total alone (the list's statement with limit 0, run on a connection of its own),
  of every session and of one agent's (a tenth of them): read from agents.sql's counts
  with no delta to sum, then with FOLD_AT deltas to sum (the most a list sums before it
  folds them; rows of n = 0 put in by hand), and with the count(*) it replaces;
- the triggers' price on writes: an append of one message to a session
  (StorageManager.append_history: a head read and an append) and the save of a new
  session (save_session), each timed REPEATS * 10 times with the count triggers enabled
  and disabled (ALTER TABLE ... DISABLE TRIGGER), in alternating rounds so both see the
  same load; the same in the server alone, per head, from statements over SERVER_ROWS
  heads (server_costs: new heads, an append's head update, hiding); then a trigger
  dropped and init_db() run again, which sets them up and seeds the counts anew (timed:
  the seeding holds writes);
- cleanup_old_sessions() to the newest 50: once with every older session to hide, then
  in steady state (a new session saved, one to hide each time; after a VACUUM, as
  autovacuum runs after a large cleanup);
- what aurite's GET /execution/history does in that steady state: the cleanup, then
  the newest 50.

EXPLAIN (ANALYZE, BUFFERS) of the page statements is printed for the largest size.
The scratch schemas are dropped at the end.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from aurite.lib.models.api.responses import AgentRunResult
from aurite.lib.storage.sessions.cache_manager import CacheManager
from aurite.lib.storage.sessions.session_manager import SessionManager
from openai.types.chat import ChatCompletionMessage
from psycopg import sql

from docstore import DocStore
from docstore.agents.aurite import AuriteStorage

DSN = os.environ.get("DOCSTORE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
REPEATS = 15
AGENTS = 10


def timed(call: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, float]:
    """Median wall and client CPU milliseconds of ``call``."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        call()
        cpus.append((time.process_time() - c) * 1000)
        walls.append((time.perf_counter() - w) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def result(agent: str, session_id: str) -> AgentRunResult:
    history = [{"role": "user", "content": f"hello {agent}"}, {"role": "assistant", "content": "hi"}]
    return AgentRunResult(
        status="success",
        final_response=ChatCompletionMessage(role="assistant", content="hi"),
        conversation_history=history,
        session_id=session_id,
        agent_name=agent,
        error_message=None,
        exception=None,
    )


def load(conn: psycopg.Connection[Any], schema: str, sessions: int) -> None:
    """Clone the ten saved sessions into ``sessions`` in all, one statement a table."""
    s = sql.Identifier(schema)
    params = {"n": sessions - AGENTS, "agents": AGENTS}
    conn.execute(
        sql.SQL(
            """
            INSERT INTO {s}.documents (kind, name, mode, version, live_from, schema_version, data,
                                       created_at, updated_at)
            SELECT t.kind, 'clone-' || g, t.mode, t.version, t.live_from, t.schema_version,
                   t.data || jsonb_build_object('session_id', 'clone-' || g),
                   now() - interval '1 hour' + g * interval '1 ms',
                   now() - interval '1 hour' + g * interval '1 ms'
            FROM generate_series(1, %(n)s) g
            JOIN {s}.documents t ON t.kind = 'conversation' AND t.name = 'template-' || (g %% %(agents)s)
            """
        ).format(s=s),
        params,
    )
    conn.execute(
        sql.SQL(
            """
            INSERT INTO {s}.versions (kind, name, version, schema_version, op, data, written_at)
            SELECT v.kind, 'clone-' || g, v.version, v.schema_version, v.op, v.data, v.written_at
            FROM generate_series(1, %(n)s) g
            JOIN {s}.versions v ON v.kind = 'conversation' AND v.name = 'template-' || (g %% %(agents)s)
            """
        ).format(s=s),
        params,
    )


def explain(conn: psycopg.Connection[Any], schema: str, sessions: int) -> None:
    try:
        from docstore.agents import _layout
    except ImportError:  # a docstore before the one-statement lists: nothing to show
        return
    for label, args in (
        ("newest 50", (None, None, 50, 0)),
        ("agent's newest 50", ("agent3", None, 50, 0)),
        (f"offset {sessions - 60}", (None, None, 50, sessions - 60)),
    ):
        query, params = _layout.sessions_page(schema, *args)
        plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ") + query, params).fetchall()
        print(f"\n-- EXPLAIN {label}")
        for (line,) in plan:
            print("   ", line)


def totals(
    conn: psycopg.Connection[Any], storage: AuriteStorage, schema: str, sessions: int, row: dict[str, Any]
) -> None:
    """The total alone: kept, kept with FOLD_AT deltas to sum, and counted by count(*)."""
    from docstore.agents import _layout

    def statement(agent_name: str | None, counted: bool) -> Callable[[], Any]:
        query, params = _layout.sessions_page(schema, agent_name, None, 0, 0, counted=counted)
        return lambda: conn.execute(query, params).fetchall()

    kept_all, kept_agent = statement(None, True), statement("agent3", True)
    count_all, count_agent = statement(None, False), statement("agent3", False)
    assert kept_all()[0][0] == count_all()[0][0] == sessions
    assert (
        kept_agent()[0][0]
        == count_agent()[0][0]
        == storage.get_sessions_list(agent_name="agent3", limit=0)[1]
    )
    row["total_all"], row["total_agent"] = timed(kept_all), timed(kept_agent)
    row["count_all"], row["count_agent"] = timed(count_all, 5), timed(count_agent, 5)
    s = sql.Identifier(schema)
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.list_count_deltas (kind, key, n) SELECT 'conversation', k, 0"
            " FROM generate_series(1, %(n)s), unnest(ARRAY['', 'aagent3']) k"
        ).format(s),
        {"n": _layout.FOLD_AT},
    )
    row["total_all_deltas"], row["total_agent_deltas"] = timed(kept_all), timed(kept_agent)
    conn.execute(sql.SQL("DELETE FROM {}.list_count_deltas").format(s))


SERVER_ROWS = 10000


def server_costs(conn: psycopg.Connection[Any], schema: str, sessions: int, row: dict[str, Any]) -> None:
    """The triggers' server time per head, from statements over SERVER_ROWS heads each (or
    every cloned one, when fewer; rolled back), triggers enabled and disabled in
    alternating rounds: new heads, an append's head update (its metadata changes, its
    group does not), and hiding heads."""
    heads = {"insert": SERVER_ROWS, "update": min(SERVER_ROWS, sessions - AGENTS)}
    heads["hide"] = heads["update"]
    documents = sql.SQL("{}.documents").format(sql.Identifier(schema))
    statements = {
        "insert": "INSERT INTO {d} (kind, name, mode, version, data)"
        " SELECT 'conversation', 'srv-' || g, 'l', 1,"
        " jsonb_build_object('name', 'agent' || g %% 10, 'session_id', 'srv-' || g)"
        " FROM generate_series(1, %(n)s) g",
        "update": "UPDATE {d} SET version = version + 1, updated_at = now(),"
        " data = data || jsonb_build_object('history_digest', md5(name)) WHERE kind = 'conversation'"
        " AND name IN (SELECT 'clone-' || g FROM generate_series(1, %(n)s) g)",
        "hide": "UPDATE {d} SET deleted = true WHERE kind = 'conversation'"
        " AND name IN (SELECT 'clone-' || g FROM generate_series(1, %(n)s) g)",
    }
    times: dict[str, list[float]] = {}
    for round_ in range(6):
        on = round_ % 2 == 0
        for trigger in ("list_count_insert", "list_count_update", "list_count_delete"):
            switch = "ENABLE" if on else "DISABLE"
            conn.execute(sql.SQL(f"ALTER TABLE {{}} {switch} TRIGGER {trigger}").format(documents))
        for label, text in statements.items():
            try:
                with conn.transaction():
                    started = time.perf_counter()
                    done = conn.execute(sql.SQL(text).format(d=documents), {"n": heads[label]}).rowcount
                    took = time.perf_counter() - started
                    assert done == heads[label], (label, done)
                    raise psycopg.Rollback
            finally:
                times.setdefault(f"srv_{label}_{'on' if on else 'off'}", []).append(took * 1e6 / done)
    for key, values in times.items():
        row[key] = statistics.median(values)


def writes(conn: psycopg.Connection[Any], storage: AuriteStorage, schema: str, row: dict[str, Any]) -> None:
    """An append and a new session's save, with the count triggers and without; then the
    counts set up again by init_db (timed)."""
    documents = sql.SQL("{}.documents").format(sql.Identifier(schema))
    message = [{"role": "user", "content": "one more"}]
    made = iter(range(10**9))
    storage.append_history("agent1", "ab-append", message)
    times: dict[str, list[tuple[float, float]]] = {}
    for round_ in range(6):
        on = round_ % 2 == 0
        switch = "ENABLE" if on else "DISABLE"
        for trigger in ("list_count_insert", "list_count_update", "list_count_delete"):
            conn.execute(sql.SQL(f"ALTER TABLE {{}} {switch} TRIGGER {trigger}").format(documents))
        calls: list[tuple[str, Callable[[], Any]]] = [
            ("append", lambda: storage.append_history("agent1", "ab-append", message)),
            (
                "create",
                lambda: storage.save_session(
                    {
                        "session_id": f"ab-{next(made)}",
                        "name": "agent1",
                        "execution_result": {"conversation_history": message},
                    }
                ),
            ),
        ]
        for label, call in calls:
            key = f"{label}_{'on' if on else 'off'}"
            for _ in range(REPEATS * 10 // 3):
                w, c = time.perf_counter(), time.process_time()
                call()
                times.setdefault(key, []).append(
                    ((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000)
                )
    for key, pairs in times.items():
        row[key] = (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs))
    # Writes went uncounted meanwhile: set up and counted again, as for a trigger dropped.
    conn.execute(sql.SQL("DROP TRIGGER list_count_insert ON {}").format(documents))
    started = time.perf_counter()
    storage.init_db()
    row["reseed_s"] = time.perf_counter() - started
    count = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE kind = 'conversation' AND NOT deleted").format(documents)
    ).fetchone()
    assert count is not None and storage.get_sessions_list(limit=0)[1] == count[0]


def run(sessions: int, show_plans: bool) -> dict[str, Any]:
    schema = f"scale_sessions_{uuid.uuid4().hex[:8]}"
    store = DocStore.connect(DSN, schema=schema)
    row: dict[str, Any] = {"sessions": sessions}
    try:
        store.init_schema()
        storage = AuriteStorage(engine=store)
        with tempfile.TemporaryDirectory() as cache_dir:
            cache = CacheManager(cache_dir=Path(cache_dir))
            manager = SessionManager(cache_manager=cache, storage_manager=storage)  # type: ignore[arg-type]
            for i in range(AGENTS):
                manager.save_agent_result(f"template-{i}", result(f"agent{i}", f"template-{i}"))
            with psycopg.connect(DSN, autocommit=True) as conn:
                started = time.perf_counter()
                load(conn, schema, sessions)
                row["load_s"] = time.perf_counter() - started
                started = time.perf_counter()
                storage.init_db()
                row["init_db_s"] = time.perf_counter() - started
                conn.execute(sql.SQL("VACUUM ANALYZE {}.documents").format(sql.Identifier(schema)))
                page = manager.get_sessions_list(limit=50)
                assert page["total"] == sessions and len(page["sessions"]) == 50, page["total"]
                row["newest"] = timed(lambda: manager.get_sessions_list(limit=50))
                row["agent_framework"] = timed(
                    lambda: manager.get_sessions_list(agent_name="agent3", limit=50), 5
                )
                row["agent_page"] = timed(lambda: storage.get_sessions_list(agent_name="agent3", limit=50))
                deep = sessions - 60
                assert len(manager.get_sessions_list(limit=50, offset=deep)["sessions"]) == 50
                row["offset"] = timed(lambda: manager.get_sessions_list(limit=50, offset=deep))
                totals(conn, storage, schema, sessions, row)
                server_costs(conn, schema, sessions, row)
                writes(conn, storage, schema, row)
                if show_plans:
                    explain(conn, schema, sessions)
                started, cpu = time.perf_counter(), time.process_time()
                live = storage.get_sessions_list(limit=0)[1]
                hidden = storage.cleanup_old_sessions(days=30, max_sessions=50)
                row["cleanup_first"] = (
                    (time.perf_counter() - started) * 1000,
                    (time.process_time() - cpu) * 1000,
                )
                assert hidden == live - 50, hidden
                # What autovacuum does after a cleanup that hid many: the hidden heads'
                # entries leave the partial indexes.
                conn.execute(sql.SQL("VACUUM ANALYZE {}.documents").format(sql.Identifier(schema)))
                cleanups: list[tuple[float, float]] = []
                requests: list[tuple[float, float]] = []
                for n in range(REPEATS):
                    manager.save_agent_result(f"new-{n}", result("agent1", f"new-{n}"))
                    w, c = time.perf_counter(), time.process_time()
                    manager.cleanup_old_sessions()
                    cleanups.append(((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000))
                    listed = manager.get_sessions_list(limit=50)
                    requests.append(((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000))
                    assert listed["total"] == 50
                for label, times in (("cleanup_steady", cleanups), ("request", requests)):
                    row[label] = (
                        statistics.median(t[0] for t in times),
                        statistics.median(t[1] for t in times),
                    )
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        store.close()
    return row


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 20000, 200000, 1000000]
    print(f"load: {os.getloadavg()}")
    rows = [run(n, n == max(sizes)) for n in sizes]
    print(f"\nload: {os.getloadavg()}")
    print(
        "\n| sessions | load (s) | init_db (s) | newest 50 | by agent, framework (asks 10,000) "
        "| by agent, page of 50 | offset N-60 | cleanup, first (hides N-50) | cleanup, steady "
        "| GET /history (cleanup + newest 50), steady |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def ms(pair: tuple[float, float]) -> str:
        return f"{pair[0]:.2f} ms ({pair[1]:.2f} CPU)"

    for r in rows:
        print(
            f"| {r['sessions']:,} | {r['load_s']:.1f} | {r['init_db_s']:.2f} | {ms(r['newest'])} "
            f"| {ms(r['agent_framework'])} | {ms(r['agent_page'])} | {ms(r['offset'])} "
            f"| {ms(r['cleanup_first'])} | {ms(r['cleanup_steady'])} | {ms(r['request'])} |"
        )
    print(
        "\n| sessions | total, all | total, agent | the same, FOLD_AT deltas | count(*), all "
        "| count(*), agent | append, triggers on / off | new session, on / off | init_db again (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['sessions']:,} | {ms(r['total_all'])} | {ms(r['total_agent'])} "
            f"| {ms(r['total_all_deltas'])} / {ms(r['total_agent_deltas'])} "
            f"| {ms(r['count_all'])} | {ms(r['count_agent'])} "
            f"| {ms(r['append_on'])} / {ms(r['append_off'])} | {ms(r['create_on'])} / {ms(r['create_off'])} "
            f"| {r['reseed_s']:.2f} |"
        )
    print("\n| sessions | server µs a head: insert, on / off | append's update, on / off | hide, on / off |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['sessions']:,} | {r['srv_insert_on']:.1f} / {r['srv_insert_off']:.1f} "
            f"| {r['srv_update_on']:.1f} / {r['srv_update_off']:.1f} "
            f"| {r['srv_hide_on']:.1f} / {r['srv_hide_off']:.1f} |"
        )


if __name__ == "__main__":
    main()
