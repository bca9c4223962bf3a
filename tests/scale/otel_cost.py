"""What docstore's OpenTelemetry instrumentation costs a call, with and without an SDK.

Not part of the suite (no test_ prefix): numbers for docs/observability.md.

    .venv/bin/python tests/scale/otel_cost.py                    # client CPU per get/put
    .venv/bin/python tests/scale/otel_cost.py --callgrind        # instructions per call too
    .venv/bin/python tests/scale/otel_cost.py --base /tmp/before # and a tree without it

Each mode runs in a fresh interpreter on the local server (DOCSTORE_URL, else
127.0.0.1:5432/postgres), a scratch schema of its own:

* ``no-api``: opentelemetry cannot be imported (as without the ``otel`` extra);
* ``api``: opentelemetry-api imported, no SDK (no provider set): the default;
* ``sdk``: the SDK's tracer provider (a batch processor to an exporter that drops
  spans) and meter provider (a reader never collected), set after the store was built;
* ``base``: ``--base PATH``'s docstore (a tree without the instrumentation), for the
  difference the check itself makes.

Client CPU is ``time.process_time()`` over ``--calls`` calls, the median of ``--rounds``;
it is noisy on a shared machine, so ``--callgrind`` also counts the instructions per call
under valgrind: (instructions of 2N calls - instructions of N calls) / N, which cancels
start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DSN = os.environ.get("DOCSTORE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"

_CHILD = r"""
import importlib.abc, json, statistics, sys, time
mode, calls, rounds, dsn, schema, ops = sys.argv[1:7]
calls, rounds, ops = int(calls), int(rounds), ops.split(",")
if mode == "no-api":
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(f"No module named {name!r} (blocked)")
            return None
    sys.meta_path.insert(0, Block())
elif mode in ("api", "sdk"):
    import opentelemetry.metrics, opentelemetry.trace
import psycopg
from docstore import DocStore
store = DocStore.connect(dsn, schema=schema, min_size=1, max_size=1)
store.init_schema()
store.register("cfg", dict)
store.put("cfg", "a", {"model": "x", "temperature": 0.5})
if mode == "sdk":
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
assert ("opentelemetry" in sys.modules) == (mode in ("api", "sdk")), mode
out = {}
for op in ops:
    call = (lambda i: store.get("cfg", "a")) if op == "get" else (lambda i: store.put("cfg", "a", {"n": i}))
    for i in range(200):
        call(i)
    samples = []
    for r in range(rounds):
        start = time.process_time()
        for i in range(calls):
            call(r * calls + i)
        samples.append((time.process_time() - start) / calls * 1e6)
    out[op] = statistics.median(samples)
store.close()
with psycopg.connect(dsn, autocommit=True) as conn:
    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
print(json.dumps(out))
"""


def child(
    mode: str, calls: int, rounds: int, path: str, ops: str = "get,put", callgrind: bool = False
) -> tuple[dict[str, Any], int]:
    """One mode in a fresh interpreter: (us per call by op, instructions or 0)."""
    schema = f"otel_cost_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "PYTHONPATH": path}
    argv = [sys.executable, "-c", _CHILD, mode, str(calls), str(rounds), DSN, schema, ops]
    if not callgrind:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
        return json.loads(done.stdout), 0
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", *argv]
        env["PYTHONHASHSEED"] = "0"  # the same dict layouts in both runs of a mode
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found, done.stderr[-2000:]
    return json.loads(done.stdout), int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--base", help="a source tree of docstore without the instrumentation")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per call")
    options = parser.parse_args()
    modes = [("no-api", str(ROOT)), ("api", str(ROOT)), ("sdk", str(ROOT))]
    if options.base:
        modes.insert(0, ("base", options.base))
    head = f"{'mode':8} {'get us':>8} {'put us':>8}"
    print(head + ("  instructions per get, per put" if options.callgrind else ""))
    for mode, path in modes:
        run = "api" if mode == "base" else mode
        cpu, _ = child(run, options.calls, options.rounds, path)
        line = f"{mode:8} {cpu['get']:8.1f} {cpu['put']:8.1f}"
        if options.callgrind:
            n = 500
            for op in ("get", "put"):
                _, one = child(run, n, 1, path, op, callgrind=True)
                _, two = child(run, n, 2, path, op, callgrind=True)
                line += f"  {(two - one) / n:>9,.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
