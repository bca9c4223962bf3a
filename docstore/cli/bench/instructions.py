"""Client instructions per call, counted by callgrind: docstore's put, get and append
against the same SQL run by hand through psycopg.

Instruction counts do not move with the machine's load, so two trees (or two runs on a
busy machine) compare exactly where wall and CPU times would not::

    python -m docstore.cli.bench.instructions [--dsn DSN] [--calls N] [--ops put get append]
    python -m docstore.cli.bench.instructions --tree /path/to/other/checkout   # its docstore

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
from collections.abc import Callable
from pathlib import Path

from ...dsn import resolve_dsn

__all__ = ["OPS", "count", "main", "measure", "per_call"]

OPS = ("put", "get", "append")

# The child: only public API and the plans' first statement (docstore._core), which
# exist in every tree this is meant to compare.
_CHILD = r"""
import sys
import orjson, psycopg
from psycopg.types.json import Jsonb
from docstore import DocStore
import os
side, op, calls, schema = sys.argv[1:5]
calls, dsn = int(calls), os.environ["DOCSTORE_URL"]
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
# What start-up made is out of the collector's way (gc.freeze), so the collections the
# calls pay for scan what the calls allocate, not a heap whose size is chance.
import gc
gc.collect()
gc.freeze()
for i in range(calls):
    call(50 + i)
store.close()
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute('DROP SCHEMA "%s" CASCADE' % schema)
"""


def count(side: str, op: str, calls: int, dsn: str, tree: str | None = None) -> int:
    """Instructions of one child run (warm-up, then ``calls`` calls), start-up included."""
    if shutil.which("valgrind") is None:
        raise RuntimeError(
            "counting instructions needs valgrind, which is not installed (apt install valgrind)"
        )
    schema = f"docstore_instr_{uuid.uuid4().hex[:10]}"
    # The DSN goes in the environment: argv is visible to every user (ps), a password too.
    # PYTHONHASHSEED: the same dict layouts in every run.
    env = {**os.environ, "PYTHONHASHSEED": "0", "DOCSTORE_URL": dsn}
    if tree is not None:
        env["PYTHONPATH"] = tree
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "valgrind",
            "--tool=callgrind",
            # The main thread's own count: the pool's threads wake on timers, whose work
            # grows with the (slowed down) wall time, not with the calls.
            "--separate-threads=yes",
            f"--callgrind-out-file={tmp}/out",
            sys.executable,
            "-c",
            _CHILD,
            side,
            op,
            str(calls),
            schema,
        ]
        # cwd: `python -c` puts the working directory first on sys.path, before the tree.
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, cwd=tmp)
        main = Path(tmp, "out-01")
        found = re.search(r"^(?:summary|totals): (\d+)", main.read_text(), re.M) if main.exists() else None
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{side} {op} under callgrind failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def per_call(side: str, op: str, calls: int, dsn: str, tree: str | None = None) -> float:
    """Instructions of one call: (2N calls - N calls) / N."""
    one = count(side, op, calls, dsn, tree)
    two = count(side, op, 2 * calls, dsn, tree)
    return (two - one) / calls


def measure(
    dsn: str,
    calls: int = 200,
    ops: tuple[str, ...] | list[str] = OPS,
    tree: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, dict[str, float]]:
    """Instructions per call of each op, docstore and raw psycopg, and their ratio."""
    out = {}
    for op in ops:
        ds = per_call("docstore", op, calls, dsn, tree)
        raw = per_call("raw", op, calls, dsn, tree)
        out[op] = {"docstore": ds, "raw": raw, "ratio": ds / raw}
        log(f"{op:7} docstore {ds:>10,.0f}  raw psycopg {raw:>10,.0f}  {ds / raw:.2f}x")
    return out


def main(argv: list[str] | None = None) -> int:
    """Print a table of instructions per call, docstore against raw psycopg."""
    parser = argparse.ArgumentParser(
        prog="python -m docstore.cli.bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dsn", default=None, help="default DOCSTORE_URL, else libpq's PG* variables")
    parser.add_argument("--calls", type=int, default=200, help="N (default 200)")
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument("--tree", help="measure the docstore of this source tree (PYTHONPATH)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 2
    tree = str(Path(args.tree).resolve()) if args.tree else None
    args.dsn = resolve_dsn(args.dsn)
    out = measure(args.dsn, args.calls, args.ops, tree, (lambda _m: None) if args.json else print)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
