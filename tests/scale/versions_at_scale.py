"""Append, read(last=50) and prune on a large versions table, plain vs hash-partitioned.

Not part of the suite (no test_ prefix): a measurement for docs/scaling.md. It starts a
throwaway server of its own (tests/servers.py, fsync off), loads ROWS version rows into
each layout server-side (generate_series), then times the store's own calls:

    .venv/bin/python tests/scale/versions_at_scale.py --rows 10000000 --partitions 16

Every number is measured in the same run on the same server, so the two layouts compare
as a ratio; absolute times depend on the machine (2 shared cores here).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servers import ThrowawayServer

from docstore import DocStore, Registry

ITEMS_PER_LOG = 100
DAYS = 90


def kinds() -> Registry:
    registry = Registry()
    registry.register("chat", dict, mode="log")
    return registry


def load(store: DocStore, rows: int, chunk: int = 500_000) -> float:
    """ROWS message rows in logs of ITEMS_PER_LOG, written over the last DAYS days
    (log i last written i * DAYS / logs days ago), plus their heads."""
    logs = rows // ITEMS_PER_LOG
    s = f'"{store.schema}"'
    started = time.perf_counter()
    with store.pool.connection() as conn:
        conn.execute(f"""
            INSERT INTO {s}.documents (kind, name, mode, version, live_from, data,
                                       created_at, updated_at)
            SELECT 'chat', 'agent/session-' || g, 'l', {ITEMS_PER_LOG}, 1,
                   jsonb_build_object('agent_name', 'agent', 'session_id', 'session-' || g),
                   now() - make_interval(secs => (g::float8 / {logs}) * {DAYS} * 86400 + 3600),
                   now() - make_interval(secs => (g::float8 / {logs}) * {DAYS} * 86400)
            FROM generate_series(0, {logs - 1}) AS g""")
        for first in range(0, logs, chunk // ITEMS_PER_LOG):
            last = min(logs, first + chunk // ITEMS_PER_LOG) - 1
            conn.execute(f"""
                INSERT INTO {s}.versions (kind, name, version, op, data, written_at)
                SELECT 'chat', 'agent/session-' || g, v, 'append',
                       jsonb_build_object(
                           'role', CASE WHEN v % 2 = 1 THEN 'user' ELSE 'assistant' END,
                           'content', repeat('lorem ipsum dolor sit amet ', 4) || g || '/' || v,
                           'usage', jsonb_build_object('input_tokens', v * 7,
                                                       'output_tokens', v * 3)),
                       now() - make_interval(secs => (g::float8 / {logs}) * {DAYS} * 86400
                                                     + ({ITEMS_PER_LOG} - v))
                FROM generate_series({first}, {last}) AS g,
                     generate_series(1, {ITEMS_PER_LOG}) AS v""")
            print(
                f"  {store.schema}: {(last + 1) * ITEMS_PER_LOG:,} rows "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        conn.execute(f"VACUUM ANALYZE {s}.versions")
        conn.execute(f"VACUUM ANALYZE {s}.documents")
    return time.perf_counter() - started


def timed_interleaved(stores: dict[str, DocStore], calls: int, fn: Any) -> dict[str, dict[str, float]]:
    """fn(store, i) for each store in turn, call after call (the order rotating), so the
    layouts share whatever else the machine is doing at each moment."""
    times: dict[str, list[float]] = {label: [] for label in stores}
    labels = list(stores)
    for i in range(calls):
        for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
            t = time.perf_counter()
            fn(stores[label], i)
            times[label].append((time.perf_counter() - t) * 1000)
    out = {}
    for label, ts in times.items():
        ts.sort()
        out[label] = {
            "mean_ms": round(statistics.fmean(ts), 3),
            "p50_ms": round(ts[len(ts) // 2], 3),
            "p99_ms": round(ts[int(len(ts) * 0.99)], 3),
            "per_s": round(1000 / statistics.fmean(ts), 1),
        }
    return out


def measure(stores: dict[str, DocStore], rows: int, calls: int, seed: int) -> dict[str, Any]:
    logs = rows // ITEMS_PER_LOG
    # Each store its own random conversations: two stores on one table reading the same
    # conversation one after the other would hand the second a warm cache.
    names = {}
    for n, label in enumerate(stores):
        rnd = random.Random(seed + n)
        names[label] = [f"agent/session-{rnd.randrange(logs)}" for _ in range(calls)]
    by_store = {id(store): names[label] for label, store in stores.items()}
    message = {"role": "user", "content": "what is the weather in Lisbon tomorrow?"}
    out: dict[str, Any] = {}
    # Warm the caches the same way for every layout: one pass of reads first.
    for label, store in stores.items():
        for name in names[label][: calls // 4]:
            store.read("chat", name, last=50)
    out["append"] = timed_interleaved(
        stores, calls, lambda st, i: st.append("chat", by_store[id(st)][i], [message])
    )
    out["read_last_50"] = timed_interleaved(
        stores, calls, lambda st, i: st.read("chat", by_store[id(st)][i], last=50)
    )
    return out


def prune(store: DocStore, rows: int) -> dict[str, Any]:
    """Retention by age: the logs last written more than DAYS - 1 days ago (about 1/DAYS
    of them, ITEMS_PER_LOG rows each), whole documents with all their versions."""
    count = f'SELECT count(*) FROM "{store.schema}".versions'
    with store.pool.connection() as conn:
        before = int(conn.execute(count).fetchone()[0])
    t = time.perf_counter()
    gone = store.prune_documents("chat", older_than=timedelta(days=DAYS - 1), batch_size=500)
    elapsed = time.perf_counter() - t
    with store.pool.connection() as conn:
        removed = before - int(conn.execute(count).fetchone()[0])
    out: dict[str, Any] = {
        "prune_by_age": {
            "documents": gone,
            "version_rows": removed,
            "seconds": round(elapsed, 2),
            "rows_per_s": round(removed / elapsed) if elapsed else None,
        }
    }
    t = time.perf_counter()
    dropped = store.prune_versions("chat", keep_last=ITEMS_PER_LOG // 2, batch_size=5000)
    out["prune_versions_scan"] = {
        "note": "live items always stay, so on append-only logs this scans and drops nothing",
        "rows": dropped,
        "seconds": round(time.perf_counter() - t, 2),
    }
    with store.pool.connection() as conn:
        size = conn.execute(
            "SELECT pg_total_relation_size(c.oid) + coalesce((SELECT sum("
            "pg_total_relation_size(i.inhrelid)) FROM pg_inherits i WHERE i.inhparent = c.oid), 0)"
            " FROM pg_class c WHERE c.oid = %s::regclass",
            [f'"{store.schema}".versions'],
        ).fetchone()
    out["versions_bytes"] = int(size[0]) if size else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = {
        "shared_buffers": "2GB",
        "max_wal_size": "16GB",
        "checkpoint_timeout": "30min",
        "maintenance_work_mem": "1GB",
        "work_mem": "64MB",
        "autovacuum": "off",
    }
    results: dict[str, Any] = {
        "rows": args.rows,
        "partitions": args.partitions,
        "calls": args.calls,
        "settings": settings,
    }
    with ThrowawayServer(settings=settings) as server:
        layouts = {"plain": None, "partitioned": args.partitions}
        stores = {}
        for label, partitions in layouts.items():
            store = DocStore.connect(server.dsn, schema=label, kinds=kinds(), max_size=2, timeout=60)
            store.init_schema(partitions=partitions)
            stores[label] = store
            print(f"loading {label} ...", flush=True)
            results.setdefault("load_seconds", {})[label] = round(load(store, args.rows), 1)
        # The partitioned layout once more, on connections that always use generic plans
        # (run-time partition pruning) instead of PostgreSQL's default choice.
        stores["partitioned_generic_plans"] = DocStore.connect(
            server.dsn,
            schema="partitioned",
            kinds=kinds(),
            max_size=2,
            timeout=60,
            kwargs={"options": "-c plan_cache_mode=force_generic_plan"},
        )
        print("measuring ...", flush=True)
        results.update(measure(stores, args.rows, args.calls, seed=7))
        for label in layouts:
            print(f"pruning {label} ...", flush=True)
            results[label] = prune(stores[label], args.rows)
        for store in stores.values():
            store.close()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
