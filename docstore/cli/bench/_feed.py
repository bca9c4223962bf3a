"""``docstore bench``'s change feed workloads: what the feed adds to a write, how soon a
commit is delivered, and a config read served from a watched cache."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg

from ... import _sql as q
from ._data import conversation
from ._harness import Result, Side, Stat, measure, ratio_result
from ._workloads import CONV, Bench, pre_json

__all__ = ["feed"]


def _append_params(name: str, message: bytes, meta: Any) -> dict[str, Any]:
    """The parameters of one message's APPEND_UPSERT, as docstore's append sends them."""
    return {
        "kind": CONV,
        "name": name,
        "n": 1,
        "items": pre_json(b"[" + message + b"]"),
        "meta": None,
        "meta_default": meta,
        "sv": 1,
        "expected": None,
        "expected_count": None,
        "meta_update": None,
        "op": "append",
        "author": None,
    }


def _without_feed(bench: Bench, sql: str, notify: bool) -> str:
    """A write statement as it was before the feed: its change row taken out."""
    bound = bench.sql(q._CHANGE_ROW, **_note(notify))
    assert bound in sql, "the statement has no change row to take out"
    return sql.replace(bound, "\n")


def _note(notify: bool) -> dict[str, str]:
    return {"note": q.NOTE, "note_join": q.NOTE_JOIN} if notify else {"note": "", "note_join": ""}


def feed(bench: Bench) -> list[Result]:
    """The feed's write cost (put, append) against the same statements without it, the
    commit-to-delivery latency, and a watched config get against a raw SELECT."""
    return [*_write_cost(bench), _concurrent_appends(bench), _latency(bench), _cached_get(bench)]


def _paired(
    pairs: int, with_feed: Callable[[int], None], without: Callable[[int], None], labels: tuple[str, str]
) -> tuple[Stat, Stat]:
    """Per-operation times of two statements run in pairs, in a random order each time:
    a difference of tens of microseconds under a commit's milliseconds of fsync needs the
    two sides side by side, not in alternate rounds, on a machine others share."""
    rng = random.Random(11)
    stats = (Stat(labels[0]), Stat(labels[1]))
    sides = (with_feed, without)
    for i in range(-20, pairs):  # 20 warm-up pairs, not counted
        order = (0, 1) if rng.random() < 0.5 else (1, 0)
        for side in order:
            cpu0, t0 = time.process_time(), time.perf_counter()
            sides[side](i)
            t1, cpu1 = time.perf_counter(), time.process_time()
            if i >= 0:
                stats[side].wall.append(t1 - t0)
                stats[side].cpu.append(cpu1 - cpu0)
    return stats


def _write_cost(bench: Bench) -> list[Result]:
    z, raw = bench.sizes, bench.raw
    pairs = z.put_ops * z.rounds
    values = [bench.config_json(v) for v in bench.configs(40)]
    # Configs (snapshot kinds) notify the feed's readers; logs do not (docs/changes.md).
    put_with = bench.sql(q.PUT_UPSERT, expect="", **_note(True))
    put_without = _without_feed(bench, put_with, True)

    def put(query: str, prefix: str) -> Callable[[int], None]:
        def run(i: int) -> None:
            raw.execute(
                query,
                {
                    "kind": "agent",
                    "name": f"{prefix}{i % 20}",
                    "sv": bench.agent_sv,
                    "data": pre_json(values[i % 40]),
                    "expected": None,
                    "op": "put",
                    "author": None,
                },
            ).fetchall()

        return run

    pw, pn = _paired(
        pairs, put(put_with, "f-"), put(put_without, "n-"), ("put, with the feed", "put, without")
    )
    # Without the wait for the WAL flush, what is left is the server's work: the row,
    # its index entry, the trigger and the NOTIFY show at their largest share.
    raw.execute("SET synchronous_commit = off")
    try:
        qw, qn = _paired(
            pairs, put(put_with, "f-"), put(put_without, "n-"), ("put, with the feed", "put, without")
        )
    finally:
        raw.execute("RESET synchronous_commit")

    append_with = bench.sql(
        q.APPEND_UPSERT, live=q.LIVE_KEEP, data=q.META_REPLACE, expect="", items=q.ITEMS_JSON, **_note(False)
    )
    append_without = _without_feed(bench, append_with, False)
    msgs = [orjson.dumps(m) for m in conversation(40, 3)]

    def append(query: str, name: str) -> Callable[[int], None]:
        meta = pre_json(orjson.dumps(bench.meta(name)))

        def run(i: int) -> None:
            raw.execute(query, _append_params(name, msgs[i % 40], meta)).fetchall()

        return run

    aw, an = _paired(
        pairs,
        append(append_with, "feed-a"),
        append(append_without, "plain-a"),
        ("append, with the feed", "append, without"),
    )
    note = "medians of {n:,} paired operations; means {a:.3f} vs {b:.3f} ms"
    return [
        ratio_result(
            "feed_cost_put",
            "put one config, with the change feed's row",
            "the same statement without it (raw psycopg)",
            pw,
            pn,
            "<=",
            1.05,
            "time",
            note=note.format(n=pairs, a=statistics.mean(pw.wall) * 1000, b=statistics.mean(pn.wall) * 1000),
        ),
        ratio_result(
            "feed_cost_put_no_flush",
            "put one config, with the change feed's row, synchronous_commit=off",
            "the same statement without it (raw psycopg)",
            qw,
            qn,
            "<=",
            1.10,
            "time",
            note=note.format(n=pairs, a=statistics.mean(qw.wall) * 1000, b=statistics.mean(qn.wall) * 1000),
        ),
        ratio_result(
            "feed_cost_append",
            "append 1 message, with the change feed's row",
            "the same statement without it (raw psycopg)",
            aw,
            an,
            "<=",
            1.05,
            "time",
            note=note.format(n=pairs, a=statistics.mean(aw.wall) * 1000, b=statistics.mean(an.wall) * 1000),
        ),
    ]


def _concurrent_appends(bench: Bench) -> Result:
    """8 threads appending to sessions of their own, each on its own connection, with the
    change row (no NOTIFY: a log kind's default) and without it: the commits overlap."""
    z = bench.sizes
    threads, per = 8, max(z.append_ops // 2, 10)
    conns = [psycopg.connect(bench.dsn, autocommit=True) for _ in range(threads)]
    with_sql = bench.sql(
        q.APPEND_UPSERT, live=q.LIVE_KEEP, data=q.META_REPLACE, expect="", items=q.ITEMS_JSON, **_note(False)
    )
    variants = {"with": with_sql, "without": _without_feed(bench, with_sql, False)}
    msg = orjson.dumps(conversation(1, 5)[0])

    def side(label: str) -> Side:
        def run(r: int) -> int:
            def work(t: int) -> None:
                name = f"conc-{label}-{t}"
                meta = pre_json(orjson.dumps(bench.meta(name)))
                for _ in range(per):
                    conns[t].execute(variants[label], _append_params(name, msg, meta)).fetchall()

            workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            return threads * per

        return Side(f"{threads} writers appending, {label} the feed", run)

    try:
        with_feed, without = measure(z.rounds, [side("with"), side("without")])
    finally:
        for conn in conns:
            conn.close()
    return ratio_result(
        "feed_cost_concurrent_append",
        f"{threads} threads appending 1 message each, with the change row",
        "the same without it",
        with_feed,
        without,
        "<=",
        1.05,
        "time",
    )


def _latency(bench: Bench) -> Result:
    """From a put's commit (its call returning) to its delivery by a feed on another
    connection: the writer is told of its commit at about the moment the feed is."""
    store = bench.store
    n = max(bench.sizes.put_ops, 50)
    committed: dict[str, float] = {}
    delivered: dict[str, float] = {}
    ready = threading.Event()

    def consume() -> None:
        feed = store.changes(["agent"], poll_interval=1.0)
        ready.set()
        for change in feed:
            delivered[change.name] = time.perf_counter()
            if len(delivered) == n:
                return

    value = bench.configs(1)[0]
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    ready.wait()
    time.sleep(0.3)  # the feed's first page is read and it listens
    rng = random.Random(7)
    for i in range(n):
        name = f"lat-{i}"
        store.put("agent", name, value)
        committed[name] = time.perf_counter()
        time.sleep(rng.random() * 0.004)
    thread.join(60)
    if len(delivered) < n:
        return Result(
            "feed_latency_p99",
            "commit to delivery, p99",
            "-",
            "<=",
            50,
            float("inf"),
            "ms",
            note=f"only {len(delivered)} of {n} delivered in 60 s",
        )
    # A feed may see the commit before the writer's reply arrives: count that as 0.
    delays = [max(0.0, delivered[name] - at) for name, at in committed.items()]
    p99 = statistics.quantiles(delays, n=100, method="inclusive")[98]
    return Result(
        "feed_latency_p99",
        f"commit to delivery by a feed, p99 of {n} puts",
        "-",
        "<=",
        50,
        p99 * 1000,
        "ms",
        note=f"p50 {statistics.median(delays) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {max(delays) * 1000:.2f} ms (from the put returning)",
    )


def _cached_get(bench: Bench) -> Result:
    """A config read from a watched StorageManager's memory against a raw SELECT."""
    from ...agents import StorageManager

    z = bench.sizes
    names = [f"cached-{i % 20}" for i in range(z.get_ops)]
    bench.store.put_many(
        "agent", {name: value for name, value in zip(names[:20], bench.configs(20), strict=True)}
    )
    get_sql = f"SELECT data FROM {bench.s}.documents WHERE kind = %s AND name = %s"
    manager = StorageManager(bench.store)
    with manager.watch_configs():

        def run_cached(_r: int) -> int:
            get = manager.get_config
            for name in names:
                get("agent", name)
            return z.get_ops

        def run_raw(_r: int) -> int:
            execute = bench.raw.execute
            for name in names:
                row = execute(get_sql, ("agent", name)).fetchone()
                assert row is not None and isinstance(row[0], dict)
            return z.get_ops

        cached, raw = measure(
            z.rounds, [Side("watched config get", run_cached), Side("raw SELECT + orjson.loads", run_raw)]
        )
    return ratio_result(
        "cached_config_get_vs_raw",
        "get one config from watch_configs' memory",
        "raw SELECT data by key + orjson.loads",
        cached,
        raw,
        ">=",
        10,
        "speed",
        note=f"{cached.ops_per_s:,.0f} vs {raw.ops_per_s:,.0f} gets/s",
    )
