"""The systems a history runs against, and how each operation is carried out on them.

``PrimaryWorld``: one server (the suite's), hosts connected directly and through the
lost-reply proxy, two feed consumers and a config watch. ``ClusterWorld``: a throwaway
primary with a streaming standby, hosts reading from a multi-host ``read_dsn`` (the
standby behind a link that can be cut, then the primary), a consumer, and a fresh
cluster to move the store to at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from proxy import LossyProxy
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from servers import ReplicaPair, ThrowawayServer

from docstore import AsyncDocStore, DocStore, DocStoreError, Registry, _replica
from docstore.agents import StorageManager

from . import faults, hostile
from .history import Call, Final, History
from .hosts import Consumer, Host, kinds
from .ops import (
    LOG,
    SNAPSHOT,
    Append,
    BadCursor,
    BadDsn,
    BadImport,
    Copy,
    Delete,
    FeedReplay,
    FeedRestart,
    FeedResume,
    FeedStop,
    Get,
    Op,
    Prune,
    PruneChanges,
    PruneVersions,
    Purge,
    Put,
    Retry,
    Transaction,
    Write,
    YamlFile,
    written,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Settings:
    """How long a run waits for what should come, and which inputs it may send."""

    soak: bool = False
    settle: float = 3.0  # seconds for feeds and the watch to catch up at the end
    yaml_limit: float = 6.0  # seconds the docstore command gets for one YAML file


@dataclass(frozen=True)
class Replay:
    """A second feed resumed from a consumer's saved cursor: what the consumer got after
    that cursor (``reference``) and what the second feed delivered (``got``), or its error."""

    consumer: str
    segment: int
    position: int
    reference: list[tuple[Any, ...]]
    got: list[tuple[Any, ...]]
    error: BaseException | None


def value(put: Put) -> dict[str, Any]:
    """The value a put stores: an llm config (the watch reads it with its model) holding
    the put's token."""
    return {
        "name": put.name,
        "type": "llm",
        "provider": "anthropic",
        "model": f"m-{put.token}",
        "token": put.token,
    }


def items(append: Append) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"{append.token}.{i}", "token": append.token, "i": i}
        for i in range(append.items)
    ]


class LogCapture(logging.Handler):
    """Every warning logged while a run goes on (docstore's, psycopg's, the pool's)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info is not None and record.exc_info[1] is not None:
            text += " " + repr(record.exc_info[1])
        self.lines.append(f"{record.name}: {text}")


class World:
    """What both worlds share: hosts, consumers, the history, and the operations."""

    def __init__(self, settings: Settings, seed: int) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self.history = History()
        self.run_id = uuid.uuid4().hex[:10]
        self.schema = f"chk_{self.run_id}"
        self.hosts: dict[str, Host] = {}
        self.consumers: dict[str, Consumer] = {}
        self.secrets: set[str] = set()
        self.logs = LogCapture()
        self.admin_dsn = ""
        self.primary_readers: set[str] = set()  # hosts whose reads go to the primary
        self.missing: Callable[[Consumer], int] = lambda consumer: 0  # set by the runner
        self._cleanups: list[Callable[[], None]] = []
        logging.getLogger().addHandler(self.logs)

    # --- connections -----------------------------------------------------------------

    def host_dsn(self, base: str, who: str, *, port: int | None = None, password: bool = True) -> str:
        """``base`` with this run's application name for ``who`` (so that the kill
        nemesis finds this run's connections), the run's password, and ``port``."""
        params: dict[str, Any] = {k: v for k, v in conninfo_to_dict(base).items() if v is not None}
        params["application_name"] = f"chk-{self.run_id}-{who}"
        if port is not None:
            params["host"], params["port"] = "127.0.0.1", str(port)
        if password and "password" not in params and self.secrets:
            params["password"] = next(iter(sorted(self.secrets)))
        return make_conninfo(**params)

    def take_password(self, dsn: str) -> None:
        """Put a password in every DSN of the run when the server takes one it does not
        ask for (trust), else watch the DSN's own password: no message may show it."""
        given = conninfo_to_dict(dsn).get("password")
        if given:
            self.secrets.add(str(given))
            return
        secret = f"chk-secret-{uuid.uuid4().hex}"
        try:
            with psycopg.connect(make_conninfo(dsn, password=secret), connect_timeout=5):
                self.secrets.add(secret)
        except psycopg.Error:
            pass

    # --- running an operation --------------------------------------------------------

    def execute(self, op: Op) -> Call:
        return self.history.run(op, lambda: self.action(op))

    def action(self, op: Op) -> Any:
        if isinstance(op, Put | Append | Delete):
            return self.write(op.host, op)
        if isinstance(op, Retry):
            return self.write(op.host, op.original)
        if isinstance(op, Transaction):
            return self.transaction(op)
        if isinstance(op, Get):
            return self.hosts[op.host].do(lambda s: s.get(op.kind, op.name))
        if isinstance(op, Purge):
            return self.hosts[op.host].do(lambda s: s.purge(op.kind, list(op.names)))
        if isinstance(op, Prune):
            older = None if op.older_than_ms is None else timedelta(milliseconds=op.older_than_ms)
            return self.hosts[op.host].do(
                lambda s: s.prune(op.kind, keep_last=op.keep_last, older_than=older)
            )
        if isinstance(op, PruneVersions):
            return self.hosts[op.host].do(lambda s: s.prune_versions(op.kind, keep_last=op.keep_last))
        if isinstance(op, PruneChanges):
            older = timedelta(milliseconds=op.older_than_ms)
            return self.hosts[op.host].do(
                lambda s: s.prune_changes(older_than=older, batch_size=op.batch_size)
            )
        if isinstance(op, Copy):
            return self.copy(self.hosts[op.host])
        if isinstance(op, FeedStop | FeedResume | FeedRestart | FeedReplay):
            return self.feed_op(op)
        if isinstance(op, BadCursor):
            return self.bad_cursor(op)
        if isinstance(op, BadImport):
            return self.bad_import(op)
        if isinstance(op, BadDsn):
            return self.bad_dsn(op)
        if isinstance(op, YamlFile):
            return self.yaml_file(op)
        return self.fault(op.what)

    def write(self, host: str, op: Write) -> Any:
        if isinstance(op, Put):
            return self.hosts[host].do(
                lambda s: s.put(
                    SNAPSHOT, op.name, value(op), expected_version=op.expected_version, idempotency_key=op.key
                )
            )
        if isinstance(op, Append):
            return self.hosts[host].do(lambda s: s.append(LOG, op.name, items(op), idempotency_key=op.key))
        return self.hosts[host].do(lambda s: s.delete(op.kind, op.name, idempotency_key=op.key))

    def transaction(self, op: Transaction) -> list[int]:
        store = self.hosts[op.host].store
        if isinstance(store, DocStore):
            with store.transaction():
                return [store.put(SNAPSHOT, p.name, value(p)).version for p in op.puts]

        async def block(astore: AsyncDocStore) -> list[int]:
            async with astore.transaction():
                return [(await astore.put(SNAPSHOT, p.name, value(p))).version for p in op.puts]

        result: list[int] = self.hosts[op.host].do(block)
        return result

    def fault(self, what: str) -> Any:
        raise ValueError(f"{type(self).__name__} has no fault {what!r}")

    # --- feeds -----------------------------------------------------------------------

    def feed_op(self, op: FeedStop | FeedResume | FeedRestart | FeedReplay) -> Any:
        consumer = self.consumers[op.consumer]
        if isinstance(op, FeedStop):
            consumer.stop()
            return consumer.saved
        if isinstance(op, FeedResume):
            consumer.resume()
            return consumer.saved
        if isinstance(op, FeedRestart):
            consumer.start_over()
            return consumer.saved
        return self.replay(consumer, op.count, random.Random(op.pick))

    def replay(self, consumer: Consumer, count: int, rng: random.Random) -> list[Replay]:
        """Resume a second feed from ``count`` of the consumer's recent saved cursors."""
        segment = consumer.segment
        if segment is None:
            return []
        delivered = list(segment.deliveries)
        # The newest cursors (a gap left by the last prune is just behind the head),
        # and some older ones.
        newest = list(range(max(0, len(delivered) - count), len(delivered)))
        older = range(0, max(0, len(delivered) - count))
        picked = newest + rng.sample(older, min(len(older), count // 4))
        done = []
        for position in sorted(picked):
            reference = [d.identity for d in delivered[position + 1 :]][:100]
            got: list[tuple[Any, ...]] = []
            error: BaseException | None = None
            try:
                got = self.drain(consumer.host, delivered[position].cursor, len(reference))
            except DocStoreError as exc:
                error = exc
            done.append(Replay(consumer.name, segment.index, position, reference, got, error))
        return done

    @staticmethod
    def drain(host: Host, cursor: str, want: int, limit: float = 1.0) -> list[tuple[Any, ...]]:
        """Read the feed after ``cursor`` until ``want`` changes came or none come."""
        got: list[tuple[Any, ...]] = []
        deadline, empty = time.monotonic() + limit, 0
        while len(got) < want and time.monotonic() < deadline and empty < 3:
            batch = host.one_poll(cursor)
            if not batch:
                empty += 1
                time.sleep(0.02)
                continue
            got += [(c.kind, c.name, c.version, c.op, c.written_at) for c in batch]
            cursor = batch[-1].cursor
        return got

    def settle(self, model_missing: Callable[[Consumer], int]) -> None:
        """Let every consumer run until it has delivered what it must, or time is up."""
        for consumer in self.consumers.values():
            consumer.resume()
        deadline = time.monotonic() + self.settings.settle
        while time.monotonic() < deadline:
            if all(model_missing(c) == 0 for c in self.consumers.values()):
                return
            time.sleep(0.05)

    # --- export, import --------------------------------------------------------------

    def export(self, host: Host) -> list[str]:
        if isinstance(host.store, DocStore):
            return list(host.store.export())

        async def lines(store: AsyncDocStore) -> list[str]:
            return [line async for line in store.export()]

        result: list[str] = host.do(lines)
        return result

    def scratch_store(self, dsn: str, schema: str) -> DocStore:
        store = DocStore.connect(dsn, schema=schema, max_size=1, timeout=5.0)
        store.init_schema()
        self._cleanups.append(lambda: self.drop_schema(dsn, schema))
        return store

    def drop_schema(self, dsn: str, schema: str) -> None:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    def copy(self, host: Host) -> dict[str, Any]:
        """Export, import into a fresh schema, export again: the same lines."""
        lines = self.export(host)
        with self.scratch_store(self.admin_dsn, f"{self.schema}_c{uuid.uuid4().hex[:6]}") as target:
            target.import_lines(lines)
            again = list(target.export())
        differ = next((i for i, (a, b) in enumerate(zip(lines, again, strict=False)) if a != b), None)
        if differ is None and len(lines) != len(again):
            differ = min(len(lines), len(again))
        return {"lines": len(lines), "first_difference": differ}

    # --- hostile inputs --------------------------------------------------------------

    def bad_cursor(self, op: BadCursor) -> hostile.Refusal:
        began = time.monotonic()
        try:
            got = self.hosts[op.host].one_poll(op.cursor)
        except Exception as exc:  # judged by the property: what it is, what it says
            return hostile.Refusal(exc, seconds=time.monotonic() - began)
        return hostile.Refusal(None, f"delivered {len(got)} changes", time.monotonic() - began)

    def bad_import(self, op: BadImport) -> hostile.SpoiledImport | None:
        """Import the host's export, one line spoiled, into a fresh schema."""
        lines = self.export(self.hosts[op.host])
        if not lines:
            return None  # nothing stored yet: nothing to spoil
        index = op.line % len(lines)
        spoiled = hostile.spoil(lines, index, op.mutation)
        with self.scratch_store(self.admin_dsn, f"{self.schema}_i{uuid.uuid4().hex[:6]}") as target:
            began = time.monotonic()
            try:
                target.import_lines(spoiled)
                refusal = hostile.Refusal(None, "imported", time.monotonic() - began)
            except Exception as exc:  # judged by the property
                refusal = hostile.Refusal(exc, seconds=time.monotonic() - began)
            return hostile.SpoiledImport(index + 1, refusal, self.user_rows(target))

    @staticmethod
    def user_rows(store: DocStore) -> int:
        """Rows of a store's two tables, but for its reserved kinds (``_docstore``...)."""
        query = sql.SQL(
            "SELECT (SELECT count(*) FROM {0}.documents WHERE kind NOT LIKE '\\_%')"
            " + (SELECT count(*) FROM {0}.versions WHERE kind NOT LIKE '\\_%')"
        ).format(sql.Identifier(store.schema))
        with store.pool.connection() as conn:
            row = conn.execute(query).fetchone()
        return int(row[0]) if row is not None else 0

    def bad_dsn(self, op: BadDsn) -> hostile.Refusal:
        self.secrets.add(op.password)
        began = time.monotonic()
        try:
            detail = self._try_dsn(op)
        except Exception as exc:  # judged by the property
            return hostile.Refusal(exc, seconds=time.monotonic() - began)
        return hostile.Refusal(None, detail, time.monotonic() - began)

    def _try_dsn(self, op: BadDsn) -> str:
        host = self.hosts[op.host]
        if op.entry == "connect":
            DocStore.connect(op.dsn, schema=self.schema, timeout=2.0).close()
            return "connected"
        if op.entry == "read_dsn":
            with DocStore.connect(
                self.host_dsn(self.admin_dsn, op.host),
                schema=self.schema,
                kinds=kinds(),
                read_dsn=op.dsn,
                max_size=1,
                timeout=2.0,
            ) as store:
                return f"read {len(store.list(SNAPSHOT))} documents"
        if op.entry == "listen_dsn":
            if isinstance(host.store, DocStore):
                return f"{len(list(host.store.changes(listen_dsn=op.dsn, stop=lambda: True)))} changes"

            async def poll(astore: AsyncDocStore) -> int:
                return len([c async for c in astore.changes(listen_dsn=op.dsn, stop=lambda: True)])

            return f"{host.do(poll)} changes"
        with DocStore.connect(
            self.host_dsn(self.admin_dsn, op.host), schema=self.schema, max_size=2
        ) as store:
            watch = StorageManager(store).watch_configs(listen_dsn=op.dsn, poll_interval=0.05)
            try:
                deadline = time.monotonic() + 3
                while watch.running and time.monotonic() < deadline:
                    time.sleep(0.02)
            finally:
                watch.close()
            if watch.error is not None:
                raise watch.error
            return "the watch ran"

    def yaml_file(self, op: YamlFile) -> hostile.Refusal:
        """The ``docstore`` command, in a process of its own, given the file, on a schema
        of its own (a file it takes may be huge)."""
        schema = f"{self.schema}_y{uuid.uuid4().hex[:6]}"
        self.scratch_store(self.admin_dsn, schema).close()
        with tempfile.TemporaryDirectory(prefix="checker-yaml-") as tmp:
            folder = Path(tmp) / "configs"
            folder.mkdir()
            path = folder / "bomb.yaml"
            path.write_text(op.text, encoding="utf-8")
            if op.entry == "sync":
                args = ["sync", str(folder)]
            else:
                args = ["put", "--new-kind", "yamlfile", f"y{self.rng.randrange(10**6)}", str(path)]
            command = [sys.executable, "-c", _YAML_DRIVER, schema, *args]
            # The DSN goes in the environment: a command line (shown by a timeout's
            # error) must not carry its password.
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": str(ROOT),
                "DOCSTORE_URL": self.host_dsn(self.admin_dsn, "yaml"),
            }
            began = time.monotonic()
            try:
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    timeout=self.settings.yaml_limit,
                    env=env,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                return hostile.Refusal(exc, seconds=time.monotonic() - began)
            return hostile.Refusal(None, f"{done.returncode}\n{done.stderr}", time.monotonic() - began)

    # --- the end ---------------------------------------------------------------------

    def finish(self) -> Final:
        """Let the feeds settle, then gather what the properties read at the end."""
        raise NotImplementedError

    def tokens(self, conn: psycopg.Connection[Any]) -> dict[tuple[int, int | None], int]:
        """How many versions rows hold each write's token (and item)."""
        query = sql.SQL(
            "SELECT (data->>'token')::bigint, (data->>'i')::int, count(*) FROM {}.versions"
            " WHERE kind = ANY(%s) AND op IN ('put', 'append') AND data ? 'token' GROUP BY 1, 2"
        ).format(sql.Identifier(self.schema))
        return {(int(t), i): int(n) for t, i, n in conn.execute(query, [[SNAPSHOT, LOG]]).fetchall()}

    def traces(self, conn: psycopg.Connection[Any]) -> dict[tuple[str, str], list[str]]:
        """Rows left of documents purged with nothing written to them since."""
        left: dict[tuple[str, str], list[str]] = {}
        for kind, name in purged_for_good(self.history):
            found = []
            for what, query in _TRACE_QUERIES.items():
                row = conn.execute(query.format(sql.Identifier(self.schema)), [kind, name]).fetchone()
                if row is not None and row[0]:
                    found.append(f"{row[0]} {what}")
            if found:
                left[(kind, name)] = found
        return left

    def close(self) -> None:
        for consumer in self.consumers.values():
            consumer.stop()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for host in [*self.hosts.values(), *(c.host for c in self.consumers.values())]:
                pool.submit(_quietly, host.close)
        for cleanup in reversed(self._cleanups):
            _quietly(cleanup)
        logging.getLogger().removeHandler(self.logs)


_TRACE_QUERIES = {
    "head rows": sql.SQL("SELECT count(*) FROM {}.documents WHERE kind = %s AND name = %s"),
    "version rows": sql.SQL("SELECT count(*) FROM {}.versions WHERE kind = %s AND name = %s"),
    "idempotency keys": sql.SQL(
        "SELECT count(*) FROM {}.versions WHERE kind = '_idempotency'"
        " AND data->>'kind' = %s AND data->>'name' = %s"
    ),
}

_YAML_DRIVER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from docstore.cli import main
sys.exit(main(["--schema", sys.argv[1], *sys.argv[2:]]))
"""


def purged_for_good(history: History) -> list[tuple[str, str]]:
    """Documents whose last touch was a purge that succeeded: every write to them had
    returned before it began."""
    found = []
    for call in history.calls:
        if not (isinstance(call.op, Purge) and call.ok):
            continue
        for name in call.op.names:
            doc = (call.op.kind, name)
            touched = [c for c in history.calls if doc in written(c.op) and c.index != call.index]
            if all(c.end < call.start for c in touched):
                found.append(doc)
    return sorted(set(found))


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        action()


# --- the world on the suite's server ---------------------------------------------------

PRIMARY_HOSTS = {"h0": ("sync", False), "h1": ("async", False), "h2": ("sync", True), "h3": ("async", True)}
"""Host -> (shell, through the lost-reply proxy)."""
PRIMARY_CONSUMERS = {"c0": "sync", "c1": "async"}


class PrimaryWorld(World):
    """The suite's server, hosts direct and behind the lost-reply proxy, two consumers
    and a config watch."""

    def __init__(self, dsn: str, settings: Settings, seed: int) -> None:
        super().__init__(settings, seed)
        self.admin_dsn = dsn
        self.take_password(dsn)
        params = conninfo_to_dict(dsn)
        self.proxy = LossyProxy(int(params.get("port") or 5432), str(params.get("host") or "127.0.0.1"))
        self.proxy.__enter__()
        self.watch: Any = None
        self.primary_readers = set(PRIMARY_HOSTS)
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        def open_host(name: str, shell: str, proxied: bool) -> Host:
            port = self.proxy.port if proxied else None
            options: dict[str, Any] = {"prepare_threshold": None} if proxied else {}
            return Host.open(
                name,
                self.host_dsn(self.admin_dsn, name, port=port),
                shell=shell,
                schema=self.schema,
                **options,
            )

        first = open_host("h0", "sync", False)
        self.hosts["h0"] = first
        first.do(lambda s: s.init_schema())
        self._cleanups.append(lambda: self.drop_schema(self.admin_dsn, self.schema))
        with ThreadPoolExecutor(max_workers=8) as pool:
            opened = {
                n: pool.submit(open_host, n, shell, proxied)
                for n, (shell, proxied) in PRIMARY_HOSTS.items()
                if n != "h0"
            }
            feeds = {n: pool.submit(open_host, n, shell, False) for n, shell in PRIMARY_CONSUMERS.items()}
            watcher = pool.submit(
                lambda: DocStore.connect(
                    self.host_dsn(self.admin_dsn, "w0"),
                    schema=self.schema,
                    kinds=Registry(),
                    max_size=2,
                    timeout=3.0,
                )
            )
            self.hosts.update({n: f.result() for n, f in opened.items()})
            for name, future in feeds.items():
                self.consumers[name] = Consumer(name, future.result(), self.history)
            self.manager = StorageManager(watcher.result(), owns_store=True)
        for consumer in self.consumers.values():
            consumer.start_over()
        self.watch = self.manager.watch_configs(poll_interval=0.05)

    def fault(self, what: str) -> Any:
        if what == "lose-reply":
            self.proxy.drop_replies(1)
            return None
        if what == "kill-connections":
            # The short run spares the host that exports (see generate.Generator).
            spare = "" if self.settings.soak else f"chk-{self.run_id}-h0"
            return faults.kill_connections(self.admin_dsn, f"chk-{self.run_id}-%", spare)
        return super().fault(what)

    def finish(self) -> Final:
        self.proxy.drop_replies(0)
        self.settle(self.missing)
        stored = {d.name: d.data.get("model") for d in self.hosts["h0"].do(lambda s: s.list(SNAPSHOT))}
        held: dict[str, Any] = {}
        deadline = time.monotonic() + self.settings.settle
        while time.monotonic() < deadline:
            held = {
                name: getattr(model, "model", None)
                for name, model in self.watch.configs.get(SNAPSHOT, {}).items()
            }
            if held == stored or self.watch.error is not None:
                break
            time.sleep(0.05)
        watch_error = None if self.watch.error is None else repr(self.watch.error)
        for consumer in self.consumers.values():
            consumer.stop()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            return Final(
                stored=stored,
                watched=held,
                watch_error=watch_error,
                tokens=self.tokens(conn),
                traces=self.traces(conn),
                logs=list(self.logs.lines),
                secrets=set(self.secrets),
            )

    def close(self) -> None:
        if self.watch is not None:
            _quietly(self.manager.close)
        super().close()
        self.proxy.__exit__(None, None, None)


# --- the world of throwaway servers ----------------------------------------------------


class Cluster:
    """The cluster scenario's servers, started once and shared by its runs: a primary
    with a streaming standby (commits wait for the WAL flush, so a crash loses nothing
    acknowledged), a database of another application on the primary, and a fresh
    cluster to move the store to."""

    OTHER_DB = "chk_other"

    def __init__(self) -> None:
        settings = {"synchronous_commit": "on", "wal_retrieve_retry_interval": "100ms"}
        pair = ReplicaPair(settings=settings)
        fresh = ThrowawayServer()
        with ThreadPoolExecutor(max_workers=2) as pool:
            started: list[Future[Any]] = [pool.submit(pair.__enter__), pool.submit(fresh.__enter__)]
        try:
            for future in started:
                future.result()
            with psycopg.connect(pair.primary.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.OTHER_DB)))
                # A cluster in service has run many transactions, the fresh one few: a
                # move goes to a cluster whose transaction ids are behind.
                conn.execute(_BURN_XIDS)
        except BaseException:
            pair.close()
            fresh.close()
            raise
        self.pair, self.fresh = pair, fresh
        assert pair.replica is not None
        self.standby: ThrowawayServer = pair.replica

    def close(self) -> None:
        self.pair.close()
        self.fresh.close()


_BURN_XIDS = """
CREATE TEMP TABLE burn (n int);
DO $$ BEGIN
    FOR i IN 1..3000 LOOP
        BEGIN
            INSERT INTO burn VALUES (i);  -- a subtransaction that writes takes an id
            RAISE EXCEPTION 'next';
        EXCEPTION WHEN raise_exception THEN NULL;
        END;
    END LOOP;
END $$;
"""

CLUSTER_HOSTS = {"p0": ("sync", False), "r0": ("sync", True), "r1": ("async", True)}
"""Host -> (shell, reads from the multi-host read_dsn)."""


class ClusterWorld(World):
    """Hosts on the cluster's primary; r0 and r1 read from ``read_dsn`` listing the
    standby (through a link that can be cut) and then the primary, as libpq's
    multi-host DSNs do. A move takes the store to the fresh cluster."""

    def __init__(self, cluster: Cluster, settings: Settings, seed: int) -> None:
        super().__init__(settings, seed)
        self.cluster = cluster
        self.admin_dsn = cluster.pair.primary.dsn
        self.take_password(self.admin_dsn)
        self.link = faults.Link(cluster.standby.port)
        self.xid = faults.XidHolder(make_conninfo(self.admin_dsn, dbname=Cluster.OTHER_DB))
        self.moved = False
        self.primary_readers = {"p0"}
        self._retry_after = _replica.RETRY_AFTER
        # Seconds on the primary after a replica failed: short, so that the replica
        # serves again within a history.
        _replica.RETRY_AFTER = 0.3
        try:
            faults.set_replay(cluster.standby.dsn, paused=False)
            self._open()
        except BaseException:
            self.close()
            raise

    def read_dsn(self, who: str) -> str:
        primary = conninfo_to_dict(self.admin_dsn)
        return make_conninfo(
            host="127.0.0.1,127.0.0.1",
            port=f"{self.link.port},{primary['port']}",
            user=str(primary.get("user") or "postgres"),
            dbname=str(primary.get("dbname") or "postgres"),
            password=next(iter(sorted(self.secrets)), None),
            application_name=f"chk-{self.run_id}-{who}-reads",
            connect_timeout="2",
        )

    def _open(self) -> None:
        first = Host.open("p0", self.host_dsn(self.admin_dsn, "p0"), shell="sync", schema=self.schema)
        self.hosts["p0"] = first
        first.do(lambda s: s.init_schema())
        primary_dsn = self.admin_dsn
        self._cleanups.append(lambda: self.drop_schema(primary_dsn, self.schema))
        self.caught_up()
        for name, (shell, replica) in CLUSTER_HOSTS.items():
            if name != "p0":
                options: dict[str, Any] = {"read_dsn": self.read_dsn(name), "max_size": 1} if replica else {}
                dsn = self.host_dsn(self.admin_dsn, name)
                self.hosts[name] = Host.open(name, dsn, shell=shell, schema=self.schema, **options)
        consumer = Host.open("c0", self.host_dsn(self.admin_dsn, "c0"), shell="sync", schema=self.schema)
        self.consumers["c0"] = Consumer("c0", consumer, self.history)
        self.consumers["c0"].start_over()

    def caught_up(self, limit: float = 20.0) -> None:
        """Wait until the standby has replayed all the primary has written."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        target = _replica.lsn_int(row[0] if row else None)
        deadline = time.monotonic() + limit
        with psycopg.connect(self.cluster.standby.dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
                if _replica.lsn_int(row[0] if row else None) >= target:
                    return
                time.sleep(0.02)
        raise RuntimeError("the standby did not catch up")

    def fault(self, what: str) -> Any:
        if what == "move":
            return self.move()
        if self.moved:
            return "moved: the old cluster's faults no longer apply"
        standby = self.cluster.standby.dsn
        if what in ("cut", "heal"):
            (self.link.cut if what == "cut" else self.link.heal)()
            return None
        if what in ("pause-replay", "resume-replay"):
            return faults.set_replay(standby, paused=what == "pause-replay")
        if what == "kill-reads":
            pattern = f"chk-{self.run_id}-%-reads"
            return faults.kill_connections(self.admin_dsn, pattern) + faults.kill_connections(
                standby, pattern
            )
        if what == "kill-connections":
            return faults.kill_connections(self.admin_dsn, f"chk-{self.run_id}-%")
        if what == "crash-primary":
            return faults.crash_and_restart(self.cluster.pair.primary)
        if what in ("hold-xid", "release-xid"):
            return (self.xid.hold if what == "hold-xid" else self.xid.release)()
        return super().fault(what)

    def move(self) -> dict[str, Any]:
        """Export the store, import it into the fresh cluster, and carry on there: every
        host reconnects to it, and each consumer resumes from its saved cursor."""
        self.xid.release()
        self.settle(self.missing)
        for consumer in self.consumers.values():
            consumer.stop()
        lines = self.export(self.hosts["p0"])
        fresh = self.cluster.fresh.dsn
        with DocStore.connect(fresh, schema=self.schema, max_size=1) as target:
            target.init_schema()
            target.import_lines(lines)
        self._cleanups.append(lambda: self.drop_schema(fresh, self.schema))
        old = [*self.hosts.values(), *(c.host for c in self.consumers.values())]
        for name, (shell, _) in CLUSTER_HOSTS.items():
            self.hosts[name] = Host.open(name, self.host_dsn(fresh, name), shell=shell, schema=self.schema)
        for name, consumer in self.consumers.items():
            consumer.rehost(Host.open(name, self.host_dsn(fresh, name), shell="sync", schema=self.schema))
            consumer.resume()
        for host in old:
            _quietly(host.close)
        self.admin_dsn, self.moved = fresh, True
        return {"lines": len(lines)}

    def finish(self) -> Final:
        self.xid.release()
        self.settle(self.missing)
        for consumer in self.consumers.values():
            consumer.stop()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            return Final(
                stored={},
                watched=None,
                watch_error=None,
                tokens=self.tokens(conn),
                traces=self.traces(conn),
                logs=list(self.logs.lines),
                secrets=set(self.secrets),
            )

    def close(self) -> None:
        _replica.RETRY_AFTER = self._retry_after
        self.xid.release()
        self.link.close()
        _quietly(lambda: faults.set_replay(self.cluster.standby.dsn, paused=False))
        super().close()
