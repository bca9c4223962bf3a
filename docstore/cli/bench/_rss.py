"""Child process of the ``iter`` workload: peak RSS growth while streaming a kind.

Run as ``python -m docstore.cli.bench._rss SCHEMA KIND COUNT`` with the DSN as the first line
of its standard input (never on its command line, where ``ps`` shows it to every user);
prints one JSON line.
A process of its own, so the peak (VmHWM) belongs to the iteration alone.
"""

from __future__ import annotations

import gc
import sys
import time

import orjson

from ...agents import AGENT
from ...store import DocStore


def _status(field: str) -> float:
    """A field of /proc/self/status, in MB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main(argv: list[str]) -> int:
    dsn = sys.stdin.readline().rstrip("\n")
    schema, kind, expected = argv[0], argv[1], int(argv[2])
    with DocStore.connect(dsn, schema=schema, min_size=1, max_size=1) as store:
        # A kind of its own (its rows are loaded by SQL), stored as the agent kind is.
        store.register(kind, AGENT.adapter, schema_version=AGENT.schema_version, upgraders=AGENT.upgraders)
        store.list(kind, limit=1)  # imports, adapters, a prepared plan: not the iteration's
        gc.collect()
        before = _status("VmRSS")
        t0 = time.perf_counter()
        count = sum(1 for _ in store.iter(kind))
        elapsed = time.perf_counter() - t0
        peak = _status("VmHWM")
        if count != expected:
            raise SystemExit(f"iter gave {count} documents, expected {expected}")
        # For contrast: what holding the documents in memory costs, from a sample.
        gc.collect()
        rss0 = _status("VmRSS")
        sample = store.list(kind, limit=min(count, 5000))
        per_doc = max(0.0, _status("VmRSS") - rss0) / max(1, len(sample))
    print(
        orjson.dumps(
            {
                "count": count,
                "growth_mb": max(0.0, peak - before),
                "docs_per_s": count / elapsed,
                "list_mb_est": per_doc * count,
            }
        ).decode()
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
