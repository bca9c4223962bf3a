"""docstore's LangGraph checkpointer against LangGraph's PostgresSaver, on one server.

Not part of the suite (no test_ prefix): a measurement for docs/langgraph.md. Both savers
run on the same PostgreSQL, each in a scratch schema of its own (dropped at the end):

- a graph of 20 steps, invoked on a fresh thread, ``--runs`` times;
- ``get_state_history`` of a long thread (``--turns`` invocations of that graph on one
  thread), its first page (``limit=10``), and ``get_state`` plus one more 20-step
  invocation on it.

Each case alternates the two savers, ``--repeat`` times, and reports the median wall time
and the median client CPU time (``time.process_time``, which the load of other processes
on the machine moves less than wall time), then the ratios PostgresSaver / docstore.

    .venv/bin/python tests/scale/langgraph_vs_postgres.py --dsn postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypedDict

import psycopg
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph import END, START, StateGraph
from psycopg.rows import dict_row

from docstore import DocStore
from docstore.langgraph import DocStoreSaver

STEPS = 20


class State(TypedDict):
    step: int
    notes: Annotated[list[str], operator.add]


def work(state: State) -> dict[str, Any]:
    return {"step": state["step"] + 1, "notes": [f"step {state['step'] + 1}: " + "x" * 80]}


def build(saver: BaseCheckpointSaver[Any]) -> Any:
    graph = StateGraph(State)
    graph.add_node("work", work)
    graph.add_edge(START, "work")
    graph.add_conditional_edges("work", lambda s: "work" if s["step"] % STEPS else END)
    return graph.compile(checkpointer=saver)


def _schema_bytes(dsn: str, schema: str) -> int:
    """Every table of a schema, indexes and TOAST included."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]).fetchall()
        for (table,) in tables:  # settle the free space maps before measuring
            conn.execute(f'VACUUM "{schema}"."{table}"')
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            [schema],
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def savers(dsn: str, sizes: dict[str, int]) -> Iterator[dict[str, BaseCheckpointSaver[Any]]]:
    """The two savers on scratch schemas; ``sizes`` gets each schema's bytes at the end."""
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    ds_schema, pg_schema = f"lg_bench_ds_{tag}", f"lg_bench_pg_{tag}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{pg_schema}"')
    try:
        with (
            DocStore.connect(dsn, schema=ds_schema) as store,
            psycopg.connect(
                dsn,
                autocommit=True,
                prepare_threshold=0,
                row_factory=dict_row,
                options=f"-c search_path={pg_schema}",
            ) as conn,
        ):
            store.init_schema()
            postgres = PostgresSaver(conn)
            postgres.setup()
            yield {"docstore": DocStoreSaver(store), "postgres": postgres}
            sizes.update(docstore=_schema_bytes(dsn, ds_schema), postgres=_schema_bytes(dsn, pg_schema))
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            for schema in (ds_schema, pg_schema):
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def timed(call: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(cases: dict[str, Callable[[], Any]], repeat: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, call in cases.items():  # alternating, so a load spike hits both
            samples[name].append(timed(call))
    return {
        name: {
            "wall_ms": statistics.median(s[0] for s in runs) * 1000,
            "cpu_ms": statistics.median(s[1] for s in runs) * 1000,
        }
        for name, runs in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dsn", default=os.environ.get("DOCSTORE_URL", "postgresql://postgres@127.0.0.1/test")
    )
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--turns", type=int, default=50, help="20-step invocations on the long thread")
    args = parser.parse_args()
    sizes: dict[str, int] = {}
    with savers(args.dsn, sizes) as by_name:
        apps = {name: build(saver) for name, saver in by_name.items()}

        def fresh(app: Any) -> Callable[[], Any]:
            return lambda: app.invoke(
                {"step": 0, "notes": []}, {"configurable": {"thread_id": uuid.uuid4().hex}}
            )

        for app in apps.values():  # warm: connections, prepared statements, imports
            fresh(app)()
        results: dict[str, Any] = {
            "graph_20_steps": measure({n: fresh(a) for n, a in apps.items()}, args.repeat)
        }

        long_thread = {"configurable": {"thread_id": "long-" + uuid.uuid4().hex}}
        for app in apps.values():
            for _ in range(args.turns):
                app.invoke({"step": 0, "notes": []}, long_thread)
        checkpoints = {n: len(list(a.get_state_history(long_thread))) for n, a in apps.items()}
        results["long_thread_checkpoints"] = checkpoints

        def history(app: Any) -> Callable[[], Any]:
            return lambda: list(app.get_state_history(long_thread))

        def page(app: Any) -> Callable[[], Any]:
            return lambda: list(app.get_state_history(long_thread, limit=10))

        def state(app: Any) -> Callable[[], Any]:
            return lambda: app.get_state(long_thread)

        def turn(app: Any) -> Callable[[], Any]:
            return lambda: app.invoke({"step": 0, "notes": []}, long_thread)

        results["get_state_history"] = measure({n: history(a) for n, a in apps.items()}, args.repeat)
        results["get_state_history_limit_10"] = measure({n: page(a) for n, a in apps.items()}, args.repeat)
        results["get_state"] = measure({n: state(a) for n, a in apps.items()}, args.repeat)
        results["graph_20_steps_on_long_thread"] = measure(
            {n: turn(a) for n, a in apps.items()}, max(3, args.repeat // 3)
        )
    ratios: dict[str, Any] = {
        case: {
            unit: round(values["postgres"][unit] / values["docstore"][unit], 2)
            for unit in ("wall_ms", "cpu_ms")
        }
        for case, values in results.items()
        if case != "long_thread_checkpoints"
    }
    results["storage_bytes"] = sizes
    ratios["storage_bytes"] = round(sizes["postgres"] / sizes["docstore"], 2)
    print(
        json.dumps({"results": results, "postgres_over_docstore": ratios, "load": os.getloadavg()}, indent=2)
    )


if __name__ == "__main__":
    main()
