"""How long an upgrade of a store's layout holds writers up, at a million version rows.

Not part of the suite (no test_ prefix): a measurement for docs/upgrading.md. It starts a
throwaway server of its own (tests/servers.py), makes a store in an earlier release's
layout (tests/layouts/), loads it server-side (generate_series), and upgrades it with
`store.migrate()` while writer threads append to logs and put configs with the
statements an older host sends (a head update and a version insert in one statement,
as every release wrote them), each timed. Meanwhile:

- the server logs every lock wait longer than ``deadlock_timeout`` (set to 5 ms here,
  with ``log_lock_waits``): each writer that waited for a lock that long, and for how
  long, is in the log;
- a thread samples pg_locks every millisecond or so for locks that stop writes (Share
  and stronger) on documents, versions and their partitions and indexes, by whom and for
  how long they were seen held.

    .venv/bin/python tests/scale/upgrade_locks.py --rows 1000000 --out /tmp/upgrade.json

Absolute times depend on the machine (2 shared cores here: the writers and the index
builds compete for them, so a writer's worst latency is CPU as much as locks).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from old_layouts import LAYOUTS, create
from servers import ThrowawayServer

from docstore import DocStore

ITEMS_PER_LOG = 20
KEYS = 50_000  # idempotency key rows among the version rows
CONFIGS = 10_000


def load(conn: psycopg.Connection[Any], schema: str, rows: int) -> float:
    """``rows`` version rows: logs of ITEMS_PER_LOG messages, configs, idempotency keys."""
    s = f'"{schema}"'
    logs = (rows - KEYS - CONFIGS) // ITEMS_PER_LOG
    started = time.perf_counter()
    conn.execute(f"""
        INSERT INTO {s}.documents (kind, name, mode, version, data)
        SELECT 'chat', 'session-' || g, 'l', {ITEMS_PER_LOG},
               jsonb_build_object('agent_name', 'agent', 'session_id', 'session-' || g)
        FROM generate_series(1, {logs}) AS g""")
    conn.execute(f"""
        INSERT INTO {s}.documents (kind, name, mode, version, data)
        SELECT 'config', 'config-' || g, 's', 1, jsonb_build_object('model', 'm', 'n', g)
        FROM generate_series(1, {CONFIGS}) AS g""")
    for first in range(1, logs + 1, 10_000):
        last = min(logs, first + 9_999)
        conn.execute(f"""
            INSERT INTO {s}.versions (kind, name, version, op, data)
            SELECT 'chat', 'session-' || g, v, 'append',
                   jsonb_build_object('role', 'user', 'content',
                                      repeat('lorem ipsum dolor sit amet ', 4) || g || '/' || v)
            FROM generate_series({first}, {last}) AS g, generate_series(1, {ITEMS_PER_LOG}) AS v""")
    conn.execute(f"""
        INSERT INTO {s}.versions (kind, name, version, op, data)
        SELECT 'config', 'config-' || g, 1, 'put', jsonb_build_object('model', 'm', 'n', g)
        FROM generate_series(1, {CONFIGS}) AS g""")
    conn.execute(f"""
        INSERT INTO {s}.versions (kind, name, version, op, data)
        SELECT '_idempotency', 'key-' || g, 1, 'put',
               jsonb_build_object('kind', 'config', 'name', 'config-' || (g % {CONFIGS} + 1),
                                  'version', 1, 'request', md5(g::text), 'created_at', now())
        FROM generate_series(1, {KEYS}) AS g""")
    conn.execute(f"VACUUM ANALYZE {s}.documents")
    conn.execute(f"VACUUM ANALYZE {s}.versions")
    return time.perf_counter() - started


# What every release sent for an append and a put: the head moved and the version row
# inserted in one statement (no change row: the first release had none).
APPEND = """
WITH head AS (
    UPDATE {s}.documents SET version = version + 1, updated_at = now()
    WHERE kind = 'chat' AND name = %(name)s RETURNING version
)
INSERT INTO {s}.versions (kind, name, version, op, data)
SELECT 'chat', %(name)s, version, 'append', '{{"role": "user", "content": "more"}}' FROM head
"""
PUT = """
WITH head AS (
    UPDATE {s}.documents SET version = version + 1, updated_at = now(),
           data = jsonb_set(data, '{{n}}', to_jsonb(version + 1))
    WHERE kind = 'config' AND name = %(name)s RETURNING version, data
)
INSERT INTO {s}.versions (kind, name, version, op, data)
SELECT 'config', %(name)s, version, 'put', data FROM head
"""


class Writers:
    """Threads writing as older hosts do, each write's start and latency kept."""

    def __init__(self, dsn: str, schema: str, logs: int, threads: int) -> None:
        self.dsn, self.logs = dsn, logs
        self.append = APPEND.format(s=f'"{schema}"')
        self.put = PUT.format(s=f'"{schema}"')
        self.samples: list[tuple[float, float]] = []
        self.pids: set[int] = set()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, seed: int) -> None:
        n = seed
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self.pids.add(conn.info.backend_pid)
            while not self.stop.is_set():
                n += 7919
                if n % 4:
                    query, name = self.append, f"session-{n % self.logs + 1}"
                else:
                    query, name = self.put, f"config-{n % CONFIGS + 1}"
                started = time.perf_counter()
                conn.execute(query.encode(), {"name": name})
                self.samples.append((started, time.perf_counter() - started))

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


# Locks that stop writes (Share and stronger) on the store's tables and indexes.
STRONG = """
SELECT l.pid, c.relname, l.mode, l.granted, a.query

FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
JOIN pg_stat_activity a ON a.pid = l.pid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND l.locktype = 'relation'
  AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
  AND (c.relname LIKE 'documents%%' OR c.relname LIKE 'versions%%')
"""


class LockSampler:
    """pg_locks sampled in a loop: each hold of a strong lock, from the first poll that
    saw it to the last one in a row (so at least that long, at most one poll longer)."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn, self.schema = dsn, schema
        self.holds: list[tuple[float, str, str, str]] = []  # (ms, relation, mode, by)
        self.polls = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        current: dict[tuple[int, str, str], tuple[float, float, str]] = {}
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                now = time.perf_counter()
                seen = {}
                for pid, rel, mode, granted, query in conn.execute(STRONG, [self.schema]).fetchall():
                    if granted:
                        first = current.get((pid, rel, mode), (now, now, ""))[0]
                        seen[(pid, rel, mode)] = (first, now, " ".join(str(query).split())[:90])
                for key, (first, last, query) in current.items():
                    if key not in seen:
                        self.holds.append(((last - first) * 1000, key[1], key[2], query))
                current = seen
                self.polls += 1
            for key, (first, last, query) in current.items():
                self.holds.append(((last - first) * 1000, key[1], key[2], query))

    def __enter__(self) -> LockSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


_WAIT = re.compile(
    r"process (\d+) (?:still waiting for|acquired) (\w+) on (relation (\d+)|[a-z ]+?) "
    r"[^\n]*? after ([0-9.]+) ms"
)


def lock_waits(log: str, pids: set[int], names: dict[int, str]) -> dict[str, Any]:
    """What log_lock_waits reported of the writers (``pids``): each wait past
    deadlock_timeout, at its longest (as it ended, or as last seen), and on what."""
    longest: dict[tuple[int, str], float] = {}
    for pid, mode, what, oid, ms in _WAIT.findall(log):
        if int(pid) in pids:
            on = names.get(int(oid), what) if oid else what
            key = (int(pid), f"{mode} on {on}")
            longest[key] = max(longest.get(key, 0.0), float(ms))
    waits = sorted(((ms, on) for (_, on), ms in longest.items()), reverse=True)
    return {"count": len(waits), "longest": [{"ms": ms, "on": on} for ms, on in waits[:5]]}


def summary(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"writes": 0}
    ordered = sorted(latencies)
    return {
        "writes": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def run(
    server: ThrowawayServer, layout_name: str, rows: int, threads: int, partitions: int
) -> dict[str, Any]:
    layout = next(layout for layout in LAYOUTS if layout.name == layout_name)
    if layout.partitions:
        layout = replace(layout, partitions=partitions)
    schema = layout_name
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        create(conn, layout, schema)
        print(f"{layout_name}: loading {rows:,} version rows ...", flush=True)
        loaded = load(conn, schema, rows)
        counts = conn.execute(
            f'SELECT (SELECT count(*) FROM "{schema}".versions), (SELECT count(*) FROM "{schema}".documents)'
        ).fetchone()
    assert counts is not None
    logs = (rows - KEYS - CONFIGS) // ITEMS_PER_LOG
    result: dict[str, Any] = {
        "layout": layout_name,
        "partitions": layout.partitions,
        "versions": counts[0],
        "documents": counts[1],
    }
    result["load_seconds"] = round(loaded, 1)
    result["upgrade"] = measured(
        server, schema, logs, threads, lambda store, say: store.migrate(progress=say)
    )
    if not layout.partitions:
        result["partition_move"] = measured(
            server,
            schema,
            logs,
            threads,
            lambda store, say: store.migrate(partitions=partitions, progress=say),
        )
    return result


def measured(
    server: ThrowawayServer,
    schema: str,
    logs: int,
    threads: int,
    action: Callable[[DocStore, Callable[[str], None]], Any],
) -> dict[str, Any]:
    """``action`` on the store while the writers write and the sampler samples."""
    result: dict[str, Any] = {}
    log_start = server.log_file.stat().st_size
    steps: list[tuple[float, str]] = []
    with (
        DocStore.connect(server.dsn, schema=schema, max_size=2, timeout=60) as store,
        Writers(server.dsn, schema, logs, threads) as writers,
    ):
        time.sleep(5)  # the writers alone, for a baseline
        with LockSampler(server.dsn, schema) as sampler:
            began = time.perf_counter()
            action(store, lambda line: steps.append((time.perf_counter(), line)))
            ended = time.perf_counter()
        time.sleep(2)
    log = server.log_file.read_text(errors="replace")[log_start:]
    before = [dt for t, dt in writers.samples if t < began]
    during = [dt for t, dt in writers.samples if began <= t < ended]
    result["seconds"] = round(ended - began, 2)
    result["writes_before"] = summary(before)
    result["writes_during"] = summary(during)
    marks = [(t, line) for t, line in steps if not line.startswith(" ")] + [(ended, "end")]
    per_step = {}
    for (start, line), (stop, _) in pairwise(marks):
        name = line.split(":", 1)[0]
        per_step[name] = {
            "seconds": round(stop - start, 3),
            **summary([dt for t, dt in writers.samples if start <= t < stop]),
        }
    result["steps"] = per_step
    result["strong_locks_seen"] = [
        {"relation": rel, "mode": mode, "held_ms_at_least": round(ms, 1), "by": by}
        for ms, rel, mode, by in sorted(sampler.holds, reverse=True)[:10]
    ]
    result["strong_lock_holds"] = len(sampler.holds)
    result["lock_sample_interval_ms"] = round((ended - began) * 1000 / max(1, sampler.polls), 2)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        names: dict[int, str] = dict(
            conn.execute(
                "SELECT c.oid::int, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s",
                [schema],
            ).fetchall()
        )
    result["writer_lock_waits_over_5ms"] = lock_waits(log, writers.pids, names)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=16, help="for the partitioned layouts")
    parser.add_argument(
        "--layouts", nargs="+", default=["first_release", "last_release_partitioned"], metavar="LAYOUT"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = {
        "shared_buffers": "1GB",
        "max_wal_size": "8GB",
        "maintenance_work_mem": "512MB",
        "log_lock_waits": "on",
        "deadlock_timeout": "5ms",
    }
    results: dict[str, Any] = {"rows": args.rows, "threads": args.threads, "settings": settings, "runs": []}
    with ThrowawayServer(settings=settings) as server:
        for layout in args.layouts:
            results["runs"].append(run(server, layout, args.rows, args.threads, args.partitions))
            print(json.dumps(results["runs"][-1], indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
