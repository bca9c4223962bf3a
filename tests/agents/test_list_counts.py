"""The framework's lists' totals, kept by agents.sql's triggers (list_counts and its
deltas): equal to a count of the matching heads after every path that changes which
heads are counted, under concurrent writers and folds, and when init_db seeds them while
sessions are being written. Each trigger is shown to be needed: without it, the checks
fail."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import agent_fixtures
import orjson
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from docstore import DocStore
from docstore.agents import StorageManager, _layout
from docstore.agents._history import fold_counts

db = agent_fixtures.db
manager = agent_fixtures.manager

HELLO = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]

# Every group as the heads' rows give it, and as the counts keep it, in one snapshot.
GROUPS = """
SELECT (SELECT coalesce(jsonb_object_agg(kind || '/' || key, n), '{{}}') FROM (
            SELECT d.kind, k.key, count(*) AS n
            FROM {s}.documents d, unnest({s}.list_count_keys(d.kind, d.data)) AS k(key)
            WHERE d.kind IN ('conversation', 'qa_result') AND NOT d.deleted
            GROUP BY 1, 2) t)::text,
       (SELECT coalesce(jsonb_object_agg(kind || '/' || key, n), '{{}}') FROM (
            SELECT kind, key, sum(n) AS n FROM (
                SELECT kind, key, n FROM {s}.list_counts
                UNION ALL SELECT kind, key, n FROM {s}.list_count_deltas) c
            GROUP BY 1, 2 HAVING sum(n) <> 0) t)::text
"""

# What the lists' filters select, counted by hand (not through the layer's statements).
SESSIONS = """
SELECT count(*) FROM {s}.documents WHERE kind = 'conversation' AND NOT deleted
  AND (%(name)s::text IS NULL
       OR data ->> 'name' = %(name)s AND coalesce(data ->> 'result_type' = 'workflow', false) = %(flow)s)
"""
QA = (
    "SELECT count(*) FROM {s}.documents WHERE kind = 'qa_result' AND NOT deleted AND data @> %(match)s::jsonb"
)
NAMES = """
SELECT DISTINCT kind, data ->> 'name', data ->> 'evaluation_config_id', data ->> 'component_type'
FROM {s}.documents WHERE kind IN ('conversation', 'qa_result')
"""


def _q(db: DocStore, text: str) -> sql.Composed:
    return sql.SQL(text).format(s=sql.Identifier(db.schema))


def mismatches(manager: Any, db: DocStore) -> list[str]:
    """Where a kept total differs from a count: every group, and each filter of the two
    lists through the manager (limit 0: the total alone)."""
    found: list[str] = []
    with db.pool.connection() as conn:
        truth, kept = conn.execute(_q(db, GROUPS)).fetchone() or ("{}", "{}")
        if orjson.loads(truth) != orjson.loads(kept):
            found.append(f"groups: counted {truth}, kept {kept}")
        names = conn.execute(_q(db, NAMES)).fetchall()
        checks: list[tuple[str, int, int]] = []
        sessions: list[tuple[str | None, str | None]] = [(None, None)]
        qa: list[dict[str, str]] = [{}]
        for kind, name, evaluation, component in names:
            if kind == "conversation" and name is not None:
                sessions += [(name, None), (None, name)]
            if kind == "qa_result":
                pair = {"evaluation_config_id": evaluation, "component_type": component}
                qa += [{k: v} for k, v in pair.items() if v]
                qa += [pair] if evaluation and component else []
        for agent, flow in sessions:
            params = {"name": flow or agent, "flow": flow is not None}
            (count,) = conn.execute(_q(db, SESSIONS), params).fetchone() or (0,)
            total = manager.get_sessions_list(agent_name=agent, workflow_name=flow, limit=0)[1]
            checks.append((f"sessions agent={agent} workflow={flow}", total, count))
        for match in qa:
            (count,) = conn.execute(_q(db, QA), {"match": orjson.dumps(match).decode()}).fetchone() or (0,)
            total = manager.get_qa_results_list(**match, limit=0)[1]
            checks.append((f"qa {match}", total, count))
    found += [f"{label}: total {total}, count {count}" for label, total, count in checks if total != count]
    return found


def session(session_id: str, name: str, result_type: str = "agent", **extra: Any) -> dict[str, Any]:
    history = [{"role": "user", "content": f"to {name}"}, {"role": "assistant", "content": "done"}]
    return {
        "session_id": session_id,
        "execution_result": {"conversation_history": history, "status": "success"},
        "name": name,
        "result_type": result_type,
        **extra,
    }


def workflow(session_id: str, name: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "execution_result": {"status": "success", "step_results": []},
        "name": name,
        "result_type": "workflow",
        "base_session_id": session_id,
    }


# --- the paths, each a step of one scenario ----------------------------------------------


def new_heads(manager: Any, db: DocStore) -> None:
    for i in range(3):
        manager.save_session(session(f"alpha-{i}", "alpha"))
    manager.save_session(session("beta-0", "beta"))
    for agent in ("flow-a", "flow-b"):
        manager.save_session(session(agent, "alpha", base_session_id="flow-1"))
    manager.save_session(workflow("flow-1", "flow"))
    manager.save_full_history("gamma", "g-1", HELLO)  # the agent-centred API: no `name`
    manager.append_history("gamma", "g-1", HELLO)  # an append moves it to no other group


def metadata_changes(manager: Any, db: DocStore) -> None:
    manager.save_session(session("alpha-2", "beta"))  # another agent's run now
    manager.save_session(session("beta-0", "beta", result_type="workflow"))  # a workflow's


def deletes_and_restores(manager: Any, db: DocStore) -> None:
    assert manager.delete_session("flow-1")  # a workflow's takes its agents' sessions
    assert manager.delete_session("alpha-0")
    assert manager.restore_session("flow-1")
    assert not manager.delete_session("alpha-0")  # already hidden: no change


def cleanup(manager: Any, db: DocStore) -> None:
    manager.cleanup_old_sessions(days=30, max_sessions=4)  # prune_documents(restorable=True)


def purges(manager: Any, db: DocStore) -> None:
    with db.pool.connection() as conn:
        query = "SELECT min(name) FROM {s}.documents WHERE kind = 'conversation' AND deleted"
        (hidden,) = conn.execute(_q(db, query)).fetchone() or (None,)
    assert hidden is not None
    db.purge("conversation", [hidden, db.list("conversation")[0].name])  # one tombstoned, one live


def prunes(manager: Any, db: DocStore) -> None:
    manager.save_session(session("old-0", "alpha"))
    with db.pool.connection() as conn:
        conn.execute(
            _q(db, "UPDATE {s}.documents SET updated_at = now() - interval '90 days' WHERE name = 'old-0'")
        )
    assert db.prune_documents("conversation", older_than=timedelta(days=30)) >= 1  # rows deleted


def rolled_back(manager: Any, db: DocStore) -> None:
    with pytest.raises(ZeroDivisionError), db.transaction():
        db.append("conversation", "rb-1", HELLO, meta={"name": "alpha", "session_id": "rb-1"})
        live = db.list("conversation")[0].name
        db.delete("conversation", live)
        db.purge("conversation", [db.list("conversation")[0].name])
        1 / 0  # noqa: B018 (rolls the transaction back)


def plain_sql(manager: Any, db: DocStore) -> None:
    statements = [
        "INSERT INTO {s}.documents (kind, name, mode, version, data) VALUES"
        " ('conversation', 'sql-1', 'l', 0, '{{\"name\": \"delta\"}}'),"
        " ('conversation', 'sql-2', 'l', 0, '{{\"name\": \"delta\", \"result_type\": \"workflow\"}}'),"
        " ('qa_result', 'sql-q', 's', 1,"
        ' \'{{"evaluation_config_id": "e9", "component_type": ["x"]}}\')',
        "UPDATE {s}.documents SET data = data || '{{\"name\": \"epsilon\"}}' WHERE name = 'sql-1'",
        "UPDATE {s}.documents SET data = data - 'result_type' WHERE name = 'sql-2'",
        "UPDATE {s}.documents SET kind = 'note' WHERE name = 'sql-1'",  # leaves the kind
        "UPDATE {s}.documents SET deleted = true WHERE name = 'sql-2'",
        "UPDATE {s}.documents SET deleted = false WHERE name = 'sql-2'",
        "DELETE FROM {s}.documents WHERE name = 'sql-2'",
        'UPDATE {s}.documents SET data = \'{{"evaluation_config_id": "e9", "component_type": "x"}}\''
        " WHERE name = 'sql-q'",
    ]
    with db.pool.connection() as conn:
        for statement in statements:
            conn.execute(_q(db, statement))


def qa_results(manager: Any, db: DocStore) -> None:
    for i in range(3):
        manager.save_qa_result(
            {"result_id": f"q{i}", "evaluation_config_id": f"e{i % 2}", "component_type": "agent"}
        )
    manager.save_qa_result({"result_id": "q1", "evaluation_config_id": "e1", "component_type": "workflow"})
    manager.save_qa_result({"result_id": "q3", "evaluation_config_id": "e0"})  # no component
    assert manager.delete_qa_result("q0")  # a purge


def folds(manager: Any, db: DocStore) -> None:
    assert fold_counts(db, least=10**6) == 0  # too few to fold: left as they are
    assert fold_counts(db) > 0
    assert fold_counts(db) == 0


def truncated(manager: Any, db: DocStore) -> None:
    with db.pool.connection() as conn:
        conn.execute(_q(db, "TRUNCATE {s}.documents"))


STEPS: list[Callable[[Any, DocStore], None]] = [
    new_heads,
    metadata_changes,
    deletes_and_restores,
    cleanup,
    purges,
    prunes,
    rolled_back,
    plain_sql,
    qa_results,
    folds,
    truncated,
]


def scenario(manager: Any, db: DocStore) -> dict[str, list[str]]:
    """Every step, and the mismatches found after each."""
    found = {}
    for step in STEPS:
        step(manager, db)
        found[step.__name__] = mismatches(manager, db)
    return found


def test_every_path_keeps_the_totals_exact(manager: Any, db: DocStore) -> None:
    manager.init_db()
    found = scenario(manager, db)
    assert found == {step.__name__: [] for step in STEPS}


@pytest.mark.parametrize("trigger", _layout.COUNT_TRIGGERS)
@pytest.mark.parametrize(
    "without",
    [
        "DROP TRIGGER {t} ON {{s}}.documents",
        "ALTER TABLE {{s}}.documents DISABLE TRIGGER {t}",
        # fires only under session_replication_role = replica (as a bulk load may set it)
        "ALTER TABLE {{s}}.documents ENABLE REPLICA TRIGGER {t}",
    ],
)
def test_without_any_one_trigger_the_totals_drift(trigger: str, without: str, db: DocStore) -> None:
    manager = StorageManager(DocStore(db.pool, schema=db.schema))
    manager.init_db()
    with db.pool.connection() as conn:
        conn.execute(_q(db, without.format(t=trigger)))
    found = scenario(manager, db)
    assert any(found.values()), found
    manager.init_db()  # sees the trigger missing or disabled: set up and counted again
    assert mismatches(manager, db) == []


def meta(session_id: str, name: str) -> dict[str, Any]:
    return {"session_id": session_id, "name": name}


def in_thread(work: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    return threading.Thread(target=run)


def creator(db: DocStore, n: int) -> None:
    mine = StorageManager(DocStore(db.pool, schema=db.schema))
    for i in range(40):
        mine.save_session(session(f"c{n}-{i}", f"agent{i % 3}"))
        if i % 5 == 4:
            mine.delete_session(f"c{n}-{i - 2}")
        if i % 10 == 9:
            mine.restore_session(f"c{n}-{i - 7}")


def rollbacks(db: DocStore) -> None:
    store = StorageManager(DocStore(db.pool, schema=db.schema)).store
    for i in range(40):
        with pytest.raises(ZeroDivisionError), store.transaction():
            store.append("conversation", f"rb-{i}", HELLO, meta={"name": "agent0", "session_id": f"rb-{i}"})
            1 / 0  # noqa: B018 (rolls the transaction back)


# The counted total and a count of the heads, in one statement's snapshot.
KEPT_AND_COUNTED = """
SELECT coalesce((SELECT n FROM {s}.list_counts WHERE kind = 'conversation' AND key = ''), 0)
       + coalesce((SELECT sum(n) FROM {s}.list_count_deltas WHERE kind = 'conversation' AND key = ''), 0),
       (SELECT count(*) FROM {s}.documents WHERE kind = 'conversation' AND NOT deleted)
"""


def watcher(db: DocStore, done: threading.Event, drift: list[tuple[int, int]]) -> None:
    while not done.is_set():
        with db.pool.connection() as conn:
            kept, counted = conn.execute(_q(db, KEPT_AND_COUNTED)).fetchone() or (0, 0)
        if kept != counted:
            drift.append((int(kept), int(counted)))


def folder(db: DocStore, done: threading.Event) -> None:
    while not done.is_set():
        fold_counts(db)


def test_concurrent_creators_deleters_folds_and_rollbacks_keep_it_exact(db: DocStore) -> None:
    manager = StorageManager(DocStore(db.pool, schema=db.schema))
    manager.init_db()
    errors: list[BaseException] = []
    done = threading.Event()
    drift: list[tuple[int, int]] = []
    writers = [in_thread(functools.partial(creator, db, n), errors) for n in range(4)]
    writers.append(in_thread(lambda: rollbacks(db), errors))
    others = [
        in_thread(lambda: folder(db, done), errors),
        in_thread(lambda: watcher(db, done, drift), errors),
    ]
    for thread in writers + others:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in others:
        thread.join()
    assert errors == []
    assert drift == []
    assert mismatches(manager, db) == []
    assert manager.get_sessions_list(limit=0)[1] == 4 * 40 - 4 * 8 + 4 * 4


def seeding_writer(
    db: DocStore, n: int, started: threading.Barrier, stop: threading.Event, live: list[int]
) -> None:
    """Sessions created (every sixth deleting the one before) until ``stop``; ``live[n]``:
    how many it left live."""
    mine = StorageManager(DocStore(db.pool, schema=db.schema)).store
    started.wait()
    i = 0
    while not stop.is_set():
        mine.append("conversation", f"w{n}-{i}", HELLO, meta=meta(f"w{n}-{i}", f"agent{i % 4}"))
        live[n] += 1
        if i % 6 == 5:
            mine.delete("conversation", f"w{n}-{i - 1}")
            live[n] -= 1
        i += 1


def test_init_db_seeds_the_counts_exactly_while_sessions_are_written(db: DocStore) -> None:
    store = StorageManager(DocStore(db.pool, schema=db.schema)).store
    for i in range(50):
        store.append("conversation", f"before-{i}", HELLO, meta=meta(f"before-{i}", f"agent{i % 4}"))
    store.delete("conversation", "before-0")
    errors: list[BaseException] = []
    started, stop, live = threading.Barrier(4), threading.Event(), [0, 0, 0]
    threads = [
        in_thread(functools.partial(seeding_writer, db, n, started, stop, live), errors) for n in range(3)
    ]
    for thread in threads:
        thread.start()
    started.wait()
    manager = StorageManager(DocStore(db.pool, schema=db.schema))
    manager.init_db()
    at_init = sum(live)
    while sum(live) < at_init + 30:  # writes after the seeding too
        stop.wait(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert at_init > 0  # writes while init_db ran
    assert mismatches(manager, db) == []
    assert manager.get_sessions_list(limit=0)[1] == 49 + sum(live)


def test_a_list_that_sums_many_deltas_folds_them(db: DocStore) -> None:
    manager = StorageManager(DocStore(db.pool, schema=db.schema))
    manager.init_db()
    now = datetime.now(UTC)
    with db.pool.connection() as conn:
        conn.execute(
            _q(
                db,
                "INSERT INTO {s}.documents (kind, name, mode, version, data, updated_at)"
                " SELECT 'conversation', 'bulk-' || g, 'l', 0, jsonb_build_object('name', 'agent' || g %% 2),"
                " %(now)s - g * interval '1 ms' FROM generate_series(1, %(n)s) g",
            ),
            {"n": _layout.FOLD_AT + 1, "now": now},
        )
        conn.execute(_q(db, "DELETE FROM {s}.documents WHERE name = 'bulk-7'"))
    assert manager.get_sessions_list(limit=0)[1] == _layout.FOLD_AT
    with db.pool.connection() as conn:
        left = conn.execute(_q(db, "SELECT count(*) FROM {s}.list_count_deltas")).fetchone()
    assert left == (0,)
    odd = [g for g in range(1, _layout.FOLD_AT + 2) if g % 2 and g != 7]
    assert manager.get_sessions_list(agent_name="agent1", limit=0)[1] == len(odd)
    assert mismatches(manager, db) == []


@pytest.mark.parametrize("odd", ["$list_count_setup$", "$list_count_change$'\"x", "a$$b$list_count_keys$"])
def test_a_schema_name_holding_the_ddls_quote_tags_is_only_a_name(
    odd: str, docstore_factory: Callable[..., DocStore]
) -> None:
    store = docstore_factory(schema=f"t{uuid.uuid4().hex[:8]}{odd}")
    manager = StorageManager(store)
    manager.init_db()
    new_heads(manager, store)
    deletes_and_restores(manager, store)
    assert mismatches(manager, store) == []
    assert manager.get_sessions_list(limit=0)[1] > 0


def test_a_renamed_schema_keeps_counting(db: DocStore) -> None:
    # The triggers' function names the schema it was made in; renamed, it finds its tables
    # through the trigger's own schema instead.
    StorageManager(DocStore(db.pool, schema=db.schema)).init_db()
    renamed = db.schema + "_renamed"
    with db.pool.connection() as conn:
        conn.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(db.schema), sql.Identifier(renamed))
        )
    try:
        store = DocStore(db.pool, schema=renamed)
        manager = StorageManager(store)
        new_heads(manager, store)
        deletes_and_restores(manager, store)
        purges(manager, store)
        assert mismatches(manager, store) == []
        assert manager.get_sessions_list(limit=0)[1] > 0
    finally:
        with db.pool.connection() as conn:
            conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(renamed), sql.Identifier(db.schema)
                )
            )


def _role(db: DocStore, writes: bool) -> str:
    """A new login role on ``db``'s schema: a writer with docs/reliability.md's grants on
    the core tables, or a reader of every table there is now."""
    role = "docstore_lc_" + uuid.uuid4().hex[:10]
    ident, schema = sql.Identifier(role), sql.Identifier(db.schema)
    with db.pool.connection() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident))
        if not writes:
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, ident))
            return role
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {0}.documents, {0}.versions TO {1}").format(
                schema, ident
            )
        )
        conn.execute(sql.SQL("GRANT SELECT, INSERT, DELETE ON {}.changes TO {}").format(schema, ident))
        conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {}.changes_seq_seq TO {}").format(schema, ident))
    return role


def _drop_role(db: DocStore, role: str) -> None:
    with db.pool.connection() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_role_with_dml_rights_on_the_heads_keeps_and_reads_the_counts(
    db: DocStore, docstore_dsn: str
) -> None:
    # Granted before init_db, as docs/reliability.md's least privilege has it: init_db
    # grants the counts to the roles that read or write the heads.
    role = _role(db, writes=True)
    try:
        StorageManager(DocStore(db.pool, schema=db.schema)).init_db()
        dsn = make_conninfo(docstore_dsn, user=role)
        with StorageManager.connect(dsn, schema=db.schema, max_size=2) as manager:
            new_heads(manager, manager.store)
            deletes_and_restores(manager, manager.store)
            manager.cleanup_old_sessions(days=30, max_sessions=3)
            assert manager.get_sessions_list(limit=0)[1] == 3
            assert mismatches(manager, db) == []
    finally:
        _drop_role(db, role)


def test_roles_made_after_init_db_write_and_list_sessions_with_no_grant_on_the_counts(
    db: DocStore, docstore_dsn: str
) -> None:
    # A writer with docs/reliability.md's grants on the core tables only (its triggers'
    # inserts run as the counts' owner), and a reader that may not fold the deltas its
    # list finds past FOLD_AT (the fold is upkeep: the page comes back, exact).
    StorageManager(DocStore(db.pool, schema=db.schema)).init_db()
    writer, reader = _role(db, writes=True), _role(db, writes=False)
    try:
        with StorageManager.connect(
            make_conninfo(docstore_dsn, user=writer), schema=db.schema, max_size=2
        ) as app:
            new_heads(app, app.store)
            deletes_and_restores(app, app.store)
        with db.pool.connection() as conn:
            conn.execute(
                _q(
                    db,
                    "INSERT INTO {s}.documents (kind, name, mode, version, data)"
                    " SELECT 'conversation', 'many-' || g, 'l', 0, jsonb_build_object('name', 'agent')"
                    " FROM generate_series(1, %(n)s) g",
                ),
                {"n": _layout.FOLD_AT + 1},
            )
        manager = StorageManager(DocStore(db.pool, schema=db.schema))
        expected = manager.get_sessions_list(limit=0)[1]
        with StorageManager.connect(
            make_conninfo(docstore_dsn, user=reader), schema=db.schema, max_size=2
        ) as dash:
            rows, total = dash.get_sessions_list(limit=5)
            assert (len(rows), total) == (5, expected)
        assert mismatches(manager, db) == []
    finally:
        _drop_role(db, writer)
        _drop_role(db, reader)


def test_a_fold_of_a_bulk_hide_gives_the_deltas_space_back(db: DocStore) -> None:
    manager = StorageManager(DocStore(db.pool, schema=db.schema))
    manager.init_db()
    heads = _layout.VACUUM_AFTER // 2 + 1  # two deltas each: every session's and the agent's
    with db.pool.connection() as conn:
        conn.execute(
            _q(
                db,
                "INSERT INTO {s}.documents (kind, name, mode, version, data, updated_at)"
                " SELECT 'conversation', 'bulk-' || g, 'l', 0, jsonb_build_object('name', 'agent'),"
                " now() - interval '90 days' FROM generate_series(1, %(n)s) g",
            ),
            {"n": heads},
        )
    assert manager.cleanup_old_sessions(days=30, max_sessions=10) == heads
    with db.pool.connection() as conn:
        size = conn.execute(_q(db, "SELECT pg_relation_size('{s}.list_count_deltas'::regclass)")).fetchone()
    assert size == (0,)  # vacuumed: no page of dead deltas left for a total to scan
    assert manager.get_sessions_list(limit=0)[1] == 0
    assert mismatches(manager, db) == []
