"""What read replicas and failover cost, measured on a throwaway primary + streaming replica.

Not part of the suite (no test_ prefix): numbers for docs/scaling.md.

    .venv/bin/python tests/scale/replica_costs.py --calls 2000

* put: a store without read_dsn vs one with it (which asks the primary for its WAL
  position after each write, one more round trip);
* get: on the primary, on a caught-up replica, and right after the store's own write
  (the replica is asked how far it has replayed; while behind, the read runs on the
  primary);
* lag: how long after a commit the replica shows it;
* failover: a synchronously replicated pair, the primary killed (immediate) under 3
  writers, the replica promoted: the time from the kill to the first acknowledged write,
  over several runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from servers import ReplicaPair

from docstore import DocStore, Registry, _replica


def kinds() -> Registry:
    registry = Registry()
    registry.register("cfg", dict)
    return registry


def _summary(times: list[float]) -> dict[str, float]:
    times.sort()
    return {
        "mean_us": round(statistics.fmean(times)),
        "p50_us": round(times[len(times) // 2]),
        "p99_us": round(times[int(len(times) * 0.99)]),
    }


def timed_pair(calls: int, fns: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each function once per round, the order alternating, so both share the noise."""
    times: dict[str, list[float]] = {label: [] for label in fns}
    labels = list(fns)
    for i in range(calls):
        for label in labels if i % 2 == 0 else labels[::-1]:
            t = time.perf_counter()
            fns[label](i)
            times[label].append((time.perf_counter() - t) * 1e6)
    return {label: _summary(ts) for label, ts in times.items()}


def routing(pair: ReplicaPair, calls: int) -> dict[str, Any]:
    assert pair.replica is not None
    out: dict[str, Any] = {}
    plain = DocStore.connect(pair.primary.dsn, schema="costs", kinds=kinds(), max_size=1)
    routed = DocStore.connect(
        pair.primary.dsn, read_dsn=pair.replica.dsn, schema="costs", kinds=kinds(), max_size=1
    )
    plain.init_schema()
    for store in (plain, routed):  # warm both pools and plans
        for i in range(200):
            store.put("cfg", f"warm{i % 10}", {"i": i})
            store.get("cfg", f"warm{i % 10}")
    out["put"] = timed_pair(
        calls,
        {
            "primary_only": lambda i: plain.put("cfg", f"p{i}", {"i": i}),
            "with_read_dsn": lambda i: routed.put("cfg", f"r{i}", {"i": i}),
        },
    )
    time.sleep(0.5)  # let the replica catch up
    out["get"] = timed_pair(
        calls,
        {
            "primary": lambda i: plain.get("cfg", f"p{i}"),
            "replica_caught_up": lambda i: routed.get("cfg", f"r{i}"),
        },
    )

    def write_then_read(i: int) -> None:
        routed.put("cfg", "own", {"i": i})
        routed.get("cfg", "own")

    reads_on_primary = 0
    original = routed._run_on_replica

    def counting(op: Any) -> Any:
        nonlocal reads_on_primary
        try:
            return original(op)
        except _replica.UsePrimary:
            reads_on_primary += 1
            raise

    routed._run_on_replica = counting  # type: ignore[method-assign]
    out["put_then_get"] = timed_pair(
        calls,
        {
            "with_read_dsn": write_then_read,
            "primary_only": lambda i: (plain.put("cfg", "own2", {"i": i}), plain.get("cfg", "own2")),
        },
    )
    out["put_then_get"]["reads_sent_to_primary"] = reads_on_primary
    routed._run_on_replica = original  # type: ignore[method-assign]
    # Replication lag: commit on the primary, poll the replica until it has the row.
    lags = []
    with (
        psycopg.connect(pair.primary.dsn, autocommit=True) as prim,
        psycopg.connect(pair.replica.dsn, autocommit=True) as rep,
    ):
        prim.execute("CREATE TABLE IF NOT EXISTS lag_probe (i int)")
        while rep.execute("SELECT to_regclass('lag_probe')").fetchone() == (None,):
            time.sleep(0.01)
        for i in range(200):
            prim.execute("INSERT INTO lag_probe VALUES (%s)", [i])
            t = time.perf_counter()
            while not rep.execute("SELECT 1 FROM lag_probe WHERE i = %s", [i]).fetchone():
                pass
            lags.append((time.perf_counter() - t) * 1e6)
    lags.sort()
    out["replica_lag_us"] = {
        "mean": round(statistics.fmean(lags)),
        "p50": round(lags[len(lags) // 2]),
        "p99": round(lags[int(len(lags) * 0.99)]),
    }
    plain.close()
    routed.close()
    return out


def failover_once() -> dict[str, Any]:
    with ReplicaPair(sync=True) as pair:
        assert pair.replica is not None
        dsn = (
            f"host=127.0.0.1,127.0.0.1 port={pair.primary.port},{pair.replica.port} "
            "user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2"
        )
        store = DocStore.connect(dsn, kinds=kinds(), schema="failover", min_size=3, max_size=3, timeout=5)
        store.init_schema()
        acked: list[tuple[float, float, str]] = []
        failed: list[str] = []
        stop = threading.Event()

        def writer(w: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                name = f"w{w}-{i}"
                started = time.monotonic()
                try:
                    store.put("cfg", name, {"i": i})
                except Exception:
                    failed.append(name)
                    time.sleep(0.02)
                else:
                    acked.append((started, time.monotonic(), name))

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        pair.primary.stop("immediate")
        killed = time.monotonic()
        pair.promote()
        promoted = time.monotonic()
        time.sleep(2.0)
        stop.set()
        for thread in threads:
            thread.join()
        store.close()
        with psycopg.connect(pair.replica.dsn, autocommit=True) as conn:
            stored = {r[0] for r in conn.execute("SELECT name FROM failover.documents")}
        resumed = [t for s, t, _ in acked if s > killed]
        return {
            "gap_s": round(min(resumed) - killed, 3) if resumed else None,
            "promote_s": round(promoted - killed, 3),
            "acked_lost": sum(1 for _, _, n in acked if n not in stored),
            "failed_calls": len(failed),
            "failed_but_committed": sum(1 for n in failed if n in stored),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    # Commits flushed at once (the default), so WAL streams as soon as it is committed;
    # the suite's servers run with synchronous_commit off, which delays it by up to
    # wal_writer_delay (200 ms).
    with ReplicaPair(settings={"synchronous_commit": "on"}) as pair:
        results["routing"] = routing(pair, args.calls)
    results["failover"] = [failover_once() for _ in range(args.failovers)]
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
