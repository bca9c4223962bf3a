"""Log kinds: what the server guarantees (contiguous versions under concurrent appends,
an index range scan for the last N), checked once, through the sync shell: the SQL is the
same for both shells, and threads have no async twin the generator could make."""

from __future__ import annotations

import threading

from test_log import META, Meta, Msg, msgs

from docstore import DocStore


def test_eight_threads_appending_to_one_conversation_get_contiguous_versions(
    docstore_store: DocStore,
) -> None:
    s = docstore_store
    s.register("conversation", Msg, mode="log", meta=Meta)
    s.append("conversation", "busy", [], meta=META)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(100):
                s.append("conversation", "busy", [{"role": "user", "content": f"{w}:{i}"}])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = s.read("conversation", "busy", written_at=True).entries()
    assert [e.version for e in entries] == list(range(1, 801))
    contents = [e.item.content for e in entries]
    assert sorted(contents) == sorted(f"{w}:{i}" for w in range(8) for i in range(100))
    for w in range(8):  # each writer's items keep their own order
        mine = [c for c in contents if c.startswith(f"{w}:")]
        assert mine == [f"{w}:{i}" for i in range(100)]


def test_read_last_50_of_10000_items_is_an_index_range_scan(docstore_store: DocStore) -> None:
    s = docstore_store
    s.register("conversation", Msg, mode="log", meta=Meta)
    for start in range(0, 10_000, 2_000):
        s.append("conversation", "long", msgs(*[str(i) for i in range(start, start + 2_000)]), meta=META)
    assert [m.content for m in s.read("conversation", "long", last=50)] == [
        str(i) for i in range(9_950, 10_000)
    ]
    from docstore import _sql

    query = s._core.sql(_sql.READ_LAST, written="", where="")
    with s.pool.connection() as conn:
        conn.execute(f'ANALYZE "{s.schema}".versions')
        conn.execute(f'ANALYZE "{s.schema}".documents')
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN (ANALYZE, FORMAT TEXT) " + query,
                {"kind": "conversation", "name": "long", "after": 0, "limit": 50},
            ).fetchall()
        )
    assert "Index Scan Backward using versions_pkey" in plan, plan
    assert "Seq Scan on versions" not in plan, plan
    scanned = next(line for line in plan.splitlines() if "versions_pkey" in line)
    assert "rows=50 " in scanned, plan
