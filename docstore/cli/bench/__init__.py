"""``docstore bench``: docstore's cost against raw psycopg doing the same work.

Every workload runs in at least 5 rounds that alternate docstore and its baseline (the
order rotates each round, so drift in the machine's load falls on both alike); medians
of per-operation times give ops/s and the ratio, reported PASS/MISS against the targets
of docs/performance.md. Absolute numbers drift on a shared machine, ratios much less.

Everything happens in a scratch schema made for the run and dropped at its end::

    python -m docstore.cli.bench [--dsn DSN] [--quick] [--json] [--scale] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg

from ..._sql import Statements
from ...dsn import describe_dsn, resolve_dsn
from ...errors import DatabaseUnavailable
from ._feed import feed
from ._harness import Result, Stat
from ._workloads import Bench, Sizes

__all__ = ["WORKLOADS", "Sizes", "machine", "main", "run"]

WORKLOADS: dict[str, Callable[[Bench], list[Result]]] = {
    "put": Bench.put,
    "get": Bench.get,
    "logs": Bench.logs,
    "history": Bench.history,
    "concurrency": Bench.concurrency,
    "put_many": Bench.put_many,
    "iter": Bench.iter_memory,
    "feed": feed,
}
"""Workload groups in the order they run; ``scale`` runs after them with ``--scale``."""


def machine(dsn: str) -> dict[str, Any]:
    """Where the numbers come from: CPUs, load, Python and PostgreSQL versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), "
            "current_setting('shared_buffers'), "
            "current_setting('synchronous_commit')"
        ).fetchone()
        assert row is not None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "load": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "postgres": row[0],
        "shared_buffers": row[1],
        "synchronous_commit": row[2],
        "db": describe_dsn(dsn),
    }


def run(
    dsn: str,
    sizes: Sizes,
    only: list[str] | None = None,
    scale: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> list[Result]:
    """Run the workloads in a scratch schema (dropped at the end); returns their results."""
    schema = f"docstore_bench_{os.getpid()}_{secrets.token_hex(3)}"
    bench = Bench(dsn, schema, sizes, log)
    results: list[Result] = []
    try:
        bench.setup()
        for name, workload in WORKLOADS.items():
            if only and name not in only:
                continue
            log(f"{name} ...")
            t0 = time.perf_counter()
            results.extend(workload(bench))
            log(f"  {time.perf_counter() - t0:.1f} s")
        if scale or (only and "scale" in only):
            log("scale ...")
            results.extend(bench.scale())
    finally:
        try:
            for suffix in ("", "_10k", "_big"):
                bench.raw.execute(f"DROP SCHEMA IF EXISTS {Statements(schema + suffix).quoted} CASCADE")
        except psycopg.Error as exc:  # the server went away: say what is left behind
            log(f"could not drop the scratch schema {schema}: {exc}")
        finally:
            bench.close()
    return results


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}" if seconds < 0.1 else f"{seconds * 1000:,.0f}"


def _us(stat: Stat | None) -> str:
    return "-" if stat is None else f"{stat.cpu_median * 1e6:,.0f}"


def table(results: list[Result]) -> str:
    """The results as a Markdown table. Client CPU (this process's, per op) sits beside
    wall time: on a loaded machine it moves much less."""
    lines = [
        "| workload | docstore ms/op (ops/s) | baseline | baseline ms/op (ops/s) "
        "| client CPU us/op (docstore / baseline) | ratio | target | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ds = f"{_ms(r.docstore.median)} ({r.docstore.ops_per_s:,.1f})" if r.docstore else "-"
        base = f"{_ms(r.base.median)} ({r.base.ops_per_s:,.1f})" if r.base else "-"
        ratio = f"{r.ratio:.2f}x" if r.unit == "x" else f"{r.ratio:.1f} {r.unit}"
        lines.append(
            f"| {r.workload} | {ds} | {r.baseline} | {base} | {_us(r.docstore)} / {_us(r.base)} "
            f"| {ratio} | {r.target} | {'PASS' if r.passed else 'MISS'} |"
        )
    notes = [f"- {r.key}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def instructions_table(counts: dict[str, dict[str, float]]) -> str:
    """Client instructions per op (callgrind), docstore against the same SQL by hand."""
    lines = [
        "| op | docstore instructions/op | same SQL by hand (psycopg) | ratio |",
        "|---|---|---|---|",
    ]
    for op, c in counts.items():
        lines.append(f"| {op} | {c['docstore']:,.0f} | {c['raw']:,.0f} | {c['ratio']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``docstore bench``: returns 0 when it ran (MISSes included), 2 when it could not."""
    parser = argparse.ArgumentParser(
        prog="docstore bench", description="docstore against raw psycopg, as ratios."
    )
    parser.add_argument(
        "--dsn",
        default=None,
        help="database to run in (a scratch schema is made and dropped); "
        "default DOCSTORE_URL, else libpq's PG* variables",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for a smoke test (seconds; numbers are noisy)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="also load 1,000,000 rows and compare append/read with 10,000 (minutes)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*WORKLOADS, "scale"],
        default=None,
        help="run only these workload groups",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per workload (at least 5)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count client instructions per put, get and append under valgrind's "
        "callgrind, against the same SQL by hand (minutes; python -m docstore.cli.bench.instructions)",
    )
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.rounds is not None:
        if args.rounds < 5:
            parser.error("--rounds must be at least 5")
        sizes = Sizes(**{**sizes.__dict__, "rounds": args.rounds})
    dsn = resolve_dsn(args.dsn)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        info = machine(dsn)
        log(
            f"docstore bench on {info['db']}: PostgreSQL {info['postgres']}, {info['nproc']} "
            f"CPUs ({info['cpu']}), load {info['load']}"
        )
        results = run(dsn, sizes, args.only, args.scale, log)
        counts = None
        if args.instructions:
            from . import instructions

            log("instructions (callgrind) ...")
            counts = instructions.measure(dsn, 100 if args.quick else 200, log=log)
    except (psycopg.Error, DatabaseUnavailable) as exc:
        text = str(exc).strip()
        print(
            f"docstore bench: cannot use the database: {text.splitlines()[0] if text else exc!r}",
            file=sys.stderr,
        )
        return 2
    info["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(
            orjson.dumps(
                {
                    "machine": info,
                    "quick": args.quick,
                    "rounds": sizes.rounds,
                    "results": [r.as_json() for r in results],
                    "instructions": counts,
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
    else:
        print(
            f"\n{info['date']} · {info['nproc']} CPUs ({info['cpu']}) · PostgreSQL "
            f"{info['postgres']} · load {info['load']} -> {info['load_after']} · "
            f"{sizes.rounds} rounds{' (quick)' if args.quick else ''}\n"
        )
        print(table(results))
        if counts is not None:
            print("\n" + instructions_table(counts))
    return 0
