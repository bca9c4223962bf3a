"""The workloads of ``docstore bench``, each against its baseline in the same run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_loads
from pydantic import TypeAdapter

from ... import _sql as q
from ...agents import (
    AGENT,
    MESSAGE_ADAPTER,
    AgentConfig,
    StorageManager,
    agent_registry,
    conversation_name,
)
from ...aio import AsyncDocStore
from ...store import DocStore
from . import _data
from ._harness import Result, Side, measure, ratio_result

__all__ = ["Bench", "Sizes"]

CONV = "conversation"


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does; ``quick`` keeps the whole run to seconds."""

    rounds: int = 7
    put_ops: int = 300
    get_ops: int = 1000
    put_many: int = 10_000
    log_long: int = 10_000
    log_short: int = 10
    append_ops: int = 200
    read_ops: int = 300
    history: int = 200
    history_small: int = 20
    history_ops: int = 30
    iter_docs: int = 100_000
    async_tasks: int = 32
    async_ops: int = 960  # per round, spread over the tasks
    scale_rows: int = 1_000_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            rounds=5,
            put_ops=20,
            get_ops=40,
            put_many=500,
            log_long=1000,
            append_ops=10,
            read_ops=20,
            history_ops=4,
            iter_docs=5000,
            async_ops=64,
            scale_rows=20_000,
        )


def _ident(data: Any) -> Any:
    return data


def pre_json(data: bytes) -> Jsonb:
    """Already-serialised JSON for raw psycopg: the Jsonb wrapper with an identity dumps."""
    return Jsonb(data, dumps=_ident)


class Bench:
    """The scratch schema, a DocStore on it, a raw psycopg connection, and the workloads."""

    def __init__(
        self, dsn: str, schema: str, sizes: Sizes, log: Callable[[str], None] = lambda _m: None
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.sizes = sizes
        self.log = log
        self.sql = q.Statements(schema)
        self.s = self.sql.quoted
        self.store = DocStore.connect(dsn, schema=schema, kinds=agent_registry())
        try:
            self.raw = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error:
            self.store.close()
            raise
        set_json_loads(orjson.loads, self.raw)
        self.agent_sv = AGENT.schema_version
        self.agent = TypeAdapter(AgentConfig)
        self._rev = 0
        self._marks: dict[tuple[str, str], tuple[Any, ...]] = {}

    def close(self) -> None:
        self.store.close()
        self.raw.close()

    def setup(self) -> None:
        self.store.init_schema()
        self.raw.execute(f"""
            CREATE TABLE {self.s}.bare (
                kind text NOT NULL, name text NOT NULL, data jsonb NOT NULL,
                PRIMARY KEY (kind, name));
            -- The original plan's history table: one row per message, rewritten whole.
            CREATE TABLE {self.s}.agent_history (
                id bigserial PRIMARY KEY, agent_name text NOT NULL, session_id text NOT NULL,
                turn integer NOT NULL, role text NOT NULL, content jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX ON {self.s}.agent_history (session_id, turn);
        """)

    # --- helpers -----------------------------------------------------------------------

    def configs(self, n: int) -> list[dict[str, Any]]:
        """``n`` agent configs, each different from every one before (a new revision)."""
        self._rev += 1
        return [_data.agent_config(i, self._rev) for i in range(n)]

    def config_json(self, value: Any) -> bytes:
        """The JSON docstore stores for ``value``: the baselines send the same bytes."""
        return self.agent.dump_json(self.agent.validate_python(value), by_alias=True)

    def meta(self, session: str) -> dict[str, Any]:
        return {"agent_name": "weather-agent-1", "session_id": session}

    def load_conversation(self, name: str, n: int) -> None:
        """A conversation of ``n`` messages, written through the store in batches."""
        batch = 500
        for start in range(0, n, batch):
            self.store.append(
                CONV,
                name,
                _data.conversation(min(batch, n - start), start),
                meta=self.meta(name) if start == 0 else None,
            )

    def mark(self, name: str, schema: str | None = None) -> None:
        """Remember a conversation's head, for :meth:`reset`."""
        s = q.Statements(schema).quoted if schema else self.s
        row = self.raw.execute(
            f"SELECT version, live_from, data::text FROM {s}.documents WHERE kind = %s AND name = %s",
            (CONV, name),
        ).fetchone()
        assert row is not None, name
        self._marks[s, name] = row

    def reset(self, name: str, schema: str | None = None) -> None:
        """Put a conversation back as it was when marked (an untimed reset between
        rounds): its later items deleted, its head (meta included) restored."""
        s = q.Statements(schema).quoted if schema else self.s
        version, live_from, data = self._marks[s, name]
        with self.raw.transaction():
            self.raw.execute(
                f"DELETE FROM {s}.versions WHERE kind = %s AND name = %s AND version > %s",
                (CONV, name, version),
            )
            self.raw.execute(
                f"UPDATE {s}.documents SET version = %s, live_from = %s, "
                "data = %s::jsonb, deleted = false WHERE kind = %s AND name = %s",
                (version, live_from, data, CONV, name),
            )

    # --- put and get -------------------------------------------------------------------

    def put(self) -> list[Result]:
        z = self.sizes
        names = [f"put-{i % 20}" for i in range(z.put_ops)]
        todo: dict[str, Any] = {}

        def prep_ds(_r: int) -> None:
            todo["ds"] = self.configs(z.put_ops)

        def run_ds(_r: int) -> int:
            put = self.store.put
            for name, value in zip(names, todo["ds"], strict=True):
                put("agent", name, value)
            return z.put_ops

        same_sql = self.sql(q.PUT_UPSERT, expect="", note=q.NOTE, note_join=q.NOTE_JOIN, same=q.PUT_SAME)

        def prep_same(_r: int) -> None:
            todo["same"] = [
                {
                    "kind": "agent",
                    "name": "raw-" + name,
                    "sv": self.agent_sv,
                    "data": pre_json(self.config_json(v)),
                    "expected": None,
                    "op": "put",
                    "author": None,
                }
                for name, v in zip(names, self.configs(z.put_ops), strict=True)
            ]

        def run_same(_r: int) -> int:
            execute = self.raw.execute
            for params in todo["same"]:
                execute(same_sql, params).fetchall()
            return z.put_ops

        bare_sql = (
            f"INSERT INTO {self.s}.bare (kind, name, data) VALUES (%s, %s, %s) "
            "ON CONFLICT (kind, name) DO UPDATE SET data = excluded.data"
        )

        def prep_bare(_r: int) -> None:
            todo["bare"] = [
                ("agent", name, pre_json(self.config_json(v)))
                for name, v in zip(names, self.configs(z.put_ops), strict=True)
            ]

        def run_bare(_r: int) -> int:
            execute = self.raw.execute
            for params in todo["bare"]:
                execute(bare_sql, params)
            return z.put_ops

        ds, same, bare = measure(
            z.rounds,
            [
                Side("docstore put", run_ds, prep_ds),
                Side("same SQL, raw psycopg", run_same, prep_same),
                Side("bare INSERT ON CONFLICT", run_bare, prep_bare),
            ],
        )
        return [
            ratio_result(
                "put_vs_same_sql",
                "put one config (2 KB, validated)",
                "same SQL via raw psycopg, pre-serialised",
                ds,
                same,
                ">=",
                0.9,
                "speed",
            ),
            ratio_result(
                "put_vs_bare",
                "put one config (2 KB, validated)",
                "raw INSERT ON CONFLICT into a bare jsonb table",
                ds,
                bare,
                ">=",
                0.7,
                "speed",
            ),
        ]

    def get(self) -> list[Result]:
        z = self.sizes
        names = [f"put-{i % 20}" for i in range(z.get_ops)]
        self.store.put_many(
            "agent", {name: value for name, value in zip(names[:20], self.configs(20), strict=True)}
        )  # what put left, were it not run
        get_sql = f"SELECT data FROM {self.s}.documents WHERE kind = %s AND name = %s"

        def run_ds(_r: int) -> int:
            get = self.store.get
            for name in names:
                get("agent", name)
            return z.get_ops

        def run_raw(_r: int) -> int:
            execute = self.raw.execute
            for name in names:
                row = execute(get_sql, ("agent", name)).fetchone()
                assert row is not None and isinstance(row[0], dict)
            return z.get_ops

        ds, raw = measure(
            z.rounds, [Side("docstore get", run_ds), Side("raw SELECT + orjson.loads", run_raw)]
        )
        return [
            ratio_result(
                "get_vs_raw",
                "get one config (validated)",
                "raw SELECT data by key + orjson.loads",
                ds,
                raw,
                ">=",
                0.75,
                "speed",
            )
        ]

    def put_many(self) -> list[Result]:
        z = self.sizes
        todo: dict[str, Any] = {}

        def prep_ds(r: int) -> None:
            todo["ds"] = {f"pm-{r}-{i}": v for i, v in enumerate(self.configs(z.put_many))}

        def run_ds(_r: int) -> int:
            docs = self.store.put_many("agent", todo["ds"])
            assert len(docs) == z.put_many
            return 1

        def prep_copy(r: int) -> None:
            todo["copy"] = [
                ("agent", f"pm-{r}-{i}", pre_json(self.config_json(v)))
                for i, v in enumerate(self.configs(z.put_many))
            ]

        def run_copy(_r: int) -> int:
            with (
                self.raw.cursor() as cur,
                cur.copy(f"COPY {self.s}.bare (kind, name, data) FROM STDIN (FORMAT BINARY)") as cp,
            ):
                cp.set_types(["text", "text", "jsonb"])
                for row in todo["copy"]:
                    cp.write_row(row)
            return 1

        ds, copy = measure(
            z.rounds,
            [Side("docstore put_many", run_ds, prep_ds), Side("raw binary COPY", run_copy, prep_copy)],
        )
        return [
            ratio_result(
                "put_many_vs_copy",
                f"put_many {z.put_many:,} configs",
                "raw binary COPY of the same JSON into a bare table",
                ds,
                copy,
                ">=",
                0.5,
                "speed",
                note=f"{z.put_many / ds.median:,.0f} docs/s vs {z.put_many / copy.median:,.0f} docs/s",
            )
        ]

    # --- logs --------------------------------------------------------------------------

    def logs(self) -> list[Result]:
        z = self.sizes
        self.log(f"  loading a {z.log_long:,}-message conversation")
        self.load_conversation("long", z.log_long)
        self.load_conversation("short", z.log_short)
        self.load_conversation("fifty", 50)
        self.raw.execute(f"VACUUM ANALYZE {self.s}.versions")
        self.raw.execute(f"VACUUM ANALYZE {self.s}.documents")
        self.mark("long")
        self.mark("short")
        msgs = _data.conversation(z.append_ops, 7)

        def appender(name: str, length: int) -> Side:
            def prep(_r: int) -> None:
                self.reset(name)

            def run(_r: int) -> int:
                append = self.store.append
                for m in msgs:
                    append(CONV, name, [m])
                return z.append_ops

            return Side(f"append at {length:,}", run, prep)

        long_, short = measure(z.rounds, [appender("long", z.log_long), appender("short", z.log_short)])
        self.reset("long")
        self.reset("short")

        def reader(name: str) -> Side:
            def run(_r: int) -> int:
                read = self.store.read
                for _ in range(z.read_ops):
                    assert len(read(CONV, name, last=50)) == 50
                return z.read_ops

            return Side(f"read(last=50) of {name}", run)

        rlong, rfifty = measure(z.rounds, [reader("long"), reader("fifty")])
        return [
            ratio_result(
                "append_long_vs_short",
                f"append 1 message at length {z.log_long:,}",
                f"append 1 message at length {z.log_short}",
                long_,
                short,
                "<=",
                1.2,
                "time",
            ),
            ratio_result(
                "read_last_long_vs_50",
                f"read(last=50) at length {z.log_long:,}",
                "read of a 50-message conversation",
                rlong,
                rfifty,
                "<=",
                1.5,
                "time",
            ),
        ]

    # --- save_full_history -------------------------------------------------------------

    def history(self) -> list[Result]:
        z = self.sizes
        saver = StorageManager(self.store).save_full_history
        how = "StorageManager.save_full_history"
        big, small = z.history, z.history_small
        full = _data.conversation(big + 2 * z.history_ops + 2)
        rows: dict[str, Any] = {}

        # The original plan: delete the session's rows, insert the whole conversation.
        insert = (
            f"INSERT INTO {self.s}.agent_history (agent_name, session_id, turn, role, "
            "content) VALUES (%s, %s, %s, %s, %s)"
        )

        def raw_prep(_r: int) -> None:
            # Its own dead rows slow each round down; vacuum them, untimed, so the
            # baseline shows its best case rather than its bloat.
            self.raw.execute(f"VACUUM {self.s}.agent_history")
            rows["raw"] = [
                [
                    ("weather-agent-1", "raw", t, m["role"], pre_json(orjson.dumps(m)))
                    for t, m in enumerate(full[: big + 2 * k])
                ]
                for k in range(1, z.history_ops + 1)
            ]

        def raw_run(_r: int) -> int:
            cur = self.raw.cursor()
            for conv_rows in rows["raw"]:
                with self.raw.transaction():
                    cur.execute(f"DELETE FROM {self.s}.agent_history WHERE session_id = %s", ("raw",))
                    cur.executemany(insert, conv_rows)
            return z.history_ops

        def ds_side(session: str, length: int) -> Side:
            convs = [full[: length + 2 * k] for k in range(1, z.history_ops + 1)]

            def prep(_r: int) -> None:
                self.reset(self.session_name(session))

            def run(_r: int) -> int:
                for conv in convs:
                    saver("weather-agent-1", session, conv)
                return z.history_ops

            return Side(f"save_full_history at {length}", run, prep)

        for session, length in (("s200", big), ("s20", small)):
            saver("weather-agent-1", session, full[:length])
            self.mark(self.session_name(session))
        ds, raw = measure(z.rounds, [ds_side("s200", big), Side("delete + reinsert", raw_run, raw_prep)])
        ds200, ds20 = measure(z.rounds, [ds_side("s200", big), ds_side("s20", small)])
        return [
            ratio_result(
                "save_full_history_vs_rewrite",
                f"save_full_history, {big} messages grown by 2",
                "delete-all-and-reinsert in raw SQL (the original plan)",
                ds,
                raw,
                ">=",
                10,
                "speed",
                note=how,
            ),
            ratio_result(
                "save_full_history_200_vs_20",
                f"save_full_history at {big} messages",
                f"save_full_history at {small} messages",
                ds200,
                ds20,
                "<=",
                1.2,
                "time",
                note=how,
            ),
        ]

    def session_name(self, session: str) -> str:
        """The conversation's name for a session of agent weather-agent-1."""
        return conversation_name("weather-agent-1", session)

    # --- iter --------------------------------------------------------------------------

    def iter_memory(self) -> list[Result]:
        z = self.sizes
        template = self.config_json(_data.agent_config(0))
        self.log(f"  loading {z.iter_docs:,} configs for iter")
        self.raw.execute(
            f"""
            INSERT INTO {self.s}.documents (kind, name, mode, version, schema_version, data)
            SELECT 'agent_iter', 'it-' || lpad(i::text, 7, '0'), 's', 1, %s,
                   jsonb_set(%s::jsonb, '{{name}}', to_jsonb('it-' || i))
            FROM generate_series(1, %s) AS i
        """,
            (self.agent_sv, template.decode(), z.iter_docs),
        )
        self.raw.execute(f"ANALYZE {self.s}.documents")
        out = subprocess.run(
            # The DSN goes through a pipe: on the command line `ps` would show its password.
            [sys.executable, "-m", "docstore.cli.bench._rss", self.schema, "agent_iter", str(z.iter_docs)],
            input=self.dsn + "\n",
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        if out.returncode != 0:
            raise RuntimeError("the iter child process failed:\n" + out.stderr[-2000:])
        found = json.loads(out.stdout.strip().splitlines()[-1])
        growth = found["growth_mb"]
        return [
            Result(
                "iter_peak_rss",
                f"iter over {z.iter_docs:,} documents",
                "-",
                "<=",
                50,
                growth,
                "MB",
                note=f"peak RSS growth {growth:.1f} MB over {found['count']:,} docs "
                f"({found['docs_per_s']:,.0f} docs/s); the same docs held in a "
                f"list would take ~{found['list_mb_est']:.0f} MB",
            )
        ]

    # --- concurrency -------------------------------------------------------------------

    def concurrency(self) -> list[Result]:
        z = self.sizes
        tasks = z.async_tasks
        per_task = max(1, z.async_ops // tasks)
        ops = per_task * tasks
        loop = asyncio.new_event_loop()
        astore = loop.run_until_complete(
            AsyncDocStore.connect(self.dsn, schema=self.schema, kinds=agent_registry())
        )
        todo: dict[str, Any] = {}

        def prep(_r: int) -> None:
            todo["values"] = self.configs(ops)

        def run_sync(_r: int) -> int:
            put = self.store.put
            for i, value in enumerate(todo["values"]):
                put("agent", f"conc-{i % tasks}", value)
            return ops

        async def worker(t: int, values: list[Any]) -> None:
            for value in values:
                await astore.put("agent", f"conc-{t}", value)

        async def all_tasks(values: list[Any]) -> None:
            await asyncio.gather(*(worker(t, values[t::tasks]) for t in range(tasks)))

        def run_async(_r: int) -> int:
            loop.run_until_complete(all_tasks(todo["values"]))
            return ops

        try:
            sync, conc = measure(
                z.rounds,
                [Side("one sync thread", run_sync, prep), Side(f"{tasks} asyncio tasks", run_async, prep)],
            )
        finally:
            loop.run_until_complete(astore.close())
            loop.close()
        return [
            ratio_result(
                "async32_vs_sync",
                f"{tasks} asyncio tasks doing put, one AsyncDocStore",
                "one sync thread doing put",
                conc,
                sync,
                ">=",
                1.5,
                "speed",
            )
        ]

    # --- scale -------------------------------------------------------------------------

    def scale(self) -> list[Result]:
        """append and read(last=50) with 10,000 vs ``scale_rows`` rows in versions: two
        more scratch schemas, one of each size, measured in alternating rounds."""
        z = self.sizes
        per_conv = 10_000 if z.scale_rows >= 100_000 else 1000
        small_schema, big_schema = self.schema + "_10k", self.schema + "_big"
        stores = {}
        try:
            for schema, rows in ((small_schema, per_conv), (big_schema, z.scale_rows)):
                self.log(f"  loading {rows:,} rows into {schema}.versions")
                stores[schema] = self._scale_store(schema, rows, per_conv)
            msgs = _data.conversation(z.append_ops, 3)

            def appender(schema: str, label: str) -> Side:
                store = stores[schema]

                def prep(_r: int) -> None:
                    self.reset("c0", schema)

                def run(_r: int) -> int:
                    for m in msgs:
                        store.append(CONV, "c0", [m])
                    return len(msgs)

                return Side(label, run, prep)

            def reader(schema: str, label: str) -> Side:
                store = stores[schema]

                def run(_r: int) -> int:
                    for _ in range(z.read_ops):
                        assert len(store.read(CONV, "c0", last=50)) == 50
                    return z.read_ops

                return Side(label, run)

            big_label = f"{z.scale_rows:,} rows"
            a_big, a_small = measure(
                z.rounds, [appender(big_schema, big_label), appender(small_schema, f"{per_conv:,} rows")]
            )
            r_big, r_small = measure(
                z.rounds, [reader(big_schema, big_label), reader(small_schema, f"{per_conv:,} rows")]
            )
        finally:
            for store in stores.values():
                store.close()
            for schema in (small_schema, big_schema):
                self.raw.execute(f"DROP SCHEMA IF EXISTS {q.Statements(schema).quoted} CASCADE")
        return [
            ratio_result(
                "scale_append",
                f"append 1 message, {z.scale_rows:,} rows in versions",
                f"the same with {per_conv:,} rows",
                a_big,
                a_small,
                "<=",
                1.5,
                "time",
            ),
            ratio_result(
                "scale_read_last",
                f"read(last=50), {z.scale_rows:,} rows in versions",
                f"the same with {per_conv:,} rows",
                r_big,
                r_small,
                "<=",
                1.5,
                "time",
            ),
        ]

    def _scale_store(self, schema: str, rows: int, per_conv: int) -> DocStore:
        """A store whose versions table holds ``rows`` messages: conversations c0, c1, ...
        of ``per_conv`` messages each, written interleaved (version-major) the way many
        sessions writing at once lay them out on disk."""
        store = DocStore.connect(self.dsn, schema=schema, min_size=1, max_size=2, kinds=agent_registry())
        store.init_schema()
        s = q.Statements(schema).quoted
        convs = max(1, rows // per_conv)
        items = [
            MESSAGE_ADAPTER.dump_json(MESSAGE_ADAPTER.validate_python(m)).decode()
            for m in _data.conversation(8)
        ]
        meta = orjson.dumps(self.meta("scale")).decode()
        with self.raw.transaction():
            self.raw.execute(
                f"""
                INSERT INTO {s}.documents (kind, name, mode, version, live_from, data)
                SELECT %s, 'c' || c, 'l', %s, 1, %s::jsonb FROM generate_series(0, %s - 1) c
            """,
                (CONV, per_conv, meta, convs),
            )
            self.raw.execute(
                f"""
                INSERT INTO {s}.versions (kind, name, version, schema_version, op, data)
                SELECT %s, 'c' || c, v, 1, 'append', (%s::jsonb[])[1 + (v + c) %% 8]
                FROM generate_series(1, %s) AS v CROSS JOIN LATERAL generate_series(0, %s - 1) c
            """,
                (CONV, items, per_conv, convs),
            )
        self.raw.execute(f"VACUUM ANALYZE {s}.versions")
        self.raw.execute(f"VACUUM ANALYZE {s}.documents")
        self.mark("c0", schema)
        return store
