"""What the systems a history runs against share, and how each operation is carried
out on them: ``primary.PrimaryWorld`` (the suite's server) and ``cluster.ClusterWorld``
(throwaway servers) add their hosts, their faults and what they gather at the end.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from docstore import AsyncDocStore, DocStore, DocStoreError
from docstore.agents import StorageManager

from . import hostile
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
                lambda s: s.prune_documents(op.kind, keep_last=op.keep_last, older_than=older)
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
                pool.submit(quietly, host.close)
        for cleanup in reversed(self._cleanups):
            quietly(cleanup)
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


def quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        action()
