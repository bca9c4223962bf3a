"""Client instructions per call, counted by callgrind: docstore's put, get and append
against the same SQL run by hand through psycopg.

Instruction counts do not move with the machine's load, so two trees (or two runs on a
busy machine) compare exactly where wall and CPU times would not::

    python -m docstore.bench.instructions [--dsn DSN] [--calls N] [--ops put get append]
    python -m docstore.bench.instructions --tree /path/to/other/checkout   # its docstore

Each (op, side) runs in a fresh interpreter under ``valgrind --tool=callgrind``, once
with N calls and once with 2N (after the same warm-up, which also gets psycopg to
prepare the statements): (instructions of 2N - instructions of N) / N is the cost of one
call, start-up cancelled. The raw side runs the statement docstore sends (taken from
docstore's own plan, so both sides run the same SQL text), with the same parameters,
serialising the value with orjson; docstore's side validates and dumps it with Pydantic
(a ``dict`` kind: what is measured is docstore's own machinery). Everything happens in
a scratch schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

__all__ = ["OPS", "count", "main"]

OPS = ("put", "get", "append")

# The child: only public API and the plans' first statement (docstore._core), which
# exist in every tree this is meant to compare.
_CHILD = r"""
import sys
import orjson, psycopg
from psycopg.types.json import Jsonb
from docstore import DocStore
side, op, calls, dsn, schema = sys.argv[1:6]
calls = int(calls)
store = DocStore.connect(dsn, schema=schema, min_size=1, max_size=1)
store.init_schema()
store.register("cfg", dict)
store.register("chat", dict, mode="log")
CONFIG = {"model": "claude-sonnet-4", "temperature": 0.2, "max_tokens": 2048,
          "tools": ["weather", "maps", "alerts"], "prompt": "Keep answers short. " * 20}
MSG = {"role": "assistant", "content": "Checking the forecast along the route. " * 8}
store.put("cfg", "a", CONFIG)
store.append("chat", "c", [MSG])
if side == "docstore":
    if op == "put":
        def call(i): store.put("cfg", "a", {**CONFIG, "rev": i})
    elif op == "get":
        def call(i): store.get("cfg", "a")
    else:
        def call(i): store.append("chat", "c", [MSG])
else:
    core = store._core
    if op == "put":
        stmt = next(core.put("cfg", "a", CONFIG, None).plan())
    elif op == "get":
        stmt = next(core.get("cfg", "a", None).plan())
    else:
        stmt = next(core.append("chat", "c", [MSG], None, None).plan())
    query, base = stmt.query, dict(stmt.params)
    conn = psycopg.connect(dsn, autocommit=True)
    execute = conn.execute
    if op == "put":
        def call(i):
            execute(query, {**base, "data": Jsonb({**CONFIG, "rev": i}, dumps=orjson.dumps)}).fetchall()
    elif op == "get":
        def call(i):
            row = execute(query, base).fetchone()
            orjson.loads(row[2])
    else:
        def call(i):
            execute(query, {**base, "items": Jsonb([MSG], dumps=orjson.dumps)}).fetchall()
for i in range(50):
    call(i)
for i in range(calls):
    call(50 + i)
store.close()
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute('DROP SCHEMA "%s" CASCADE' % schema)
"""


def count(side: str, op: str, calls: int, dsn: str, tree: str | None = None) -> int:
    """Instructions of one child run (warm-up, then ``calls`` calls), start-up included."""
    schema = f"docstore_instr_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts in every run
    if tree is not None:
        env["PYTHONPATH"] = tree
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/out",
            sys.executable,
            "-c",
            _CHILD,
            side,
            op,
            str(calls),
            dsn,
            schema,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{side} {op} under callgrind failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def per_call(side: str, op: str, calls: int, dsn: str, tree: str | None = None) -> float:
    """Instructions of one call: (2N calls - N calls) / N."""
    one = count(side, op, calls, dsn, tree)
    two = count(side, op, 2 * calls, dsn, tree)
    return (two - one) / calls


def main(argv: list[str] | None = None) -> int:
    """Print a table of instructions per call, docstore against raw psycopg."""
    parser = argparse.ArgumentParser(
        prog="python -m docstore.bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dsn", default=os.environ.get("DOCSTORE_URL", ""))
    parser.add_argument("--calls", type=int, default=200, help="N (default 200)")
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument("--tree", help="measure the docstore of this source tree (PYTHONPATH)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 2
    tree = str(Path(args.tree).resolve()) if args.tree else None
    out = {}
    for op in args.ops:
        ds = per_call("docstore", op, args.calls, args.dsn, tree)
        raw = per_call("raw", op, args.calls, args.dsn, tree)
        out[op] = {"docstore": ds, "raw": raw, "ratio": ds / raw}
        if not args.json:
            print(f"{op:7} docstore {ds:>10,.0f}  raw psycopg {raw:>10,.0f}  {ds / raw:.2f}x", flush=True)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
