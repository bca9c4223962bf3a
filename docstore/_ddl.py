"""The store's layout, versioned (docs/upgrading.md).

schema.sql creates a store at this release's DDL version, recorded at its end (the one
place the number is written). A store made by an earlier release is brought up to it in
place by :data:`STEPS`: ordered, each idempotent, keyed by the version it belongs to,
so a later layout change is one more entry. Every step is its own transaction (or, for
an index, a build CONCURRENTLY) and is recorded in the store as done when it commits: an
upgrade cut short (a killed process, a lost connection) goes on where it stopped when
run again, and two hosts running it at once each find what the other did.

No step holds an exclusive lock on ``documents`` or ``versions`` for more than a moment:
transactional steps take their locks under a short ``lock_timeout`` and try again later
rather than queue writers behind a long transaction, and indexes are built
CONCURRENTLY. The waits between attempts run outside any transaction, so no upgrade
holds a snapshot that another one's index build would wait for.

Writes check the recorded version before the first write of a pool: a release writes
only to a store at its own DDL version (an older one lacks what it writes, a newer one
has what it would leave out).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Any

import orjson
from psycopg import errors as pge
from psycopg import sql

from . import _sql as q
from ._base import CoreBase
from ._plan import Op, Plan, Program, Stmt, T, one_statement
from .errors import DDLVersionMismatch, DocStoreError, SchemaMissing

__all__ = [
    "STEPS",
    "Index",
    "LayoutPlans",
    "Migration",
    "MigrationStep",
    "Step",
    "ddl_version",
    "release_name",
]

LOCK_TIMEOUT_MS = 20
"""How long a step waits for a table lock before it lets go and tries again: the most it
makes writers queued behind it wait, when a long transaction holds the table."""

LOCK_PATIENCE = 300.0
"""Seconds a step keeps trying to take its locks before it gives up, naming them."""


@dataclass(frozen=True, slots=True)
class Index:
    """An index a step builds CONCURRENTLY: ``CREATE INDEX <name> ON <table> <definition>``.
    On a partitioned table, one partition at a time, each attached to the parent's."""

    name: str
    table: str
    definition: str


@dataclass(frozen=True, slots=True)
class Step:
    """One step of an upgrade: ``run`` (a transaction) or ``index`` (built CONCURRENTLY).

    ``version``: the DDL version the store reaches once this step and every step before
    it has run. ``online``: False for a step that stops writes for longer than a moment;
    it runs only when confirmed (``migrate(offline_ok=True)``, ``docstore migrate --yes``).
    """

    version: int
    name: str
    summary: str
    locks: str
    run: Callable[[q.Statements], Plan[None]] | None = None
    index: Index | None = None
    online: bool = True

    @property
    def info(self) -> MigrationStep:
        """The step as ``migrate()`` reports it."""
        return MigrationStep(self.version, self.name, self.summary, self.locks, self.online)


@dataclass(frozen=True, slots=True)
class MigrationStep:
    """One step of an upgrade of the store's layout, as :meth:`DocStore.migrate` reports it.

    ``online``: False for a step that stops writes for longer than a moment; such a step
    runs only when confirmed.
    """

    version: int
    name: str
    summary: str
    locks: str
    online: bool


@dataclass(frozen=True, slots=True)
class Migration:
    """What :meth:`DocStore.migrate` found, and ran (or, with ``dry_run``, would run).

    ``store_version`` is the DDL version the store recorded before, ``release_version``
    the one this release writes (and the store's after a run). ``steps`` are the steps
    still to do, in order; ``notes`` what the upgrade leaves as it is, and why.
    """

    schema: str
    store_version: int
    release_version: int
    steps: tuple[MigrationStep, ...]
    dry_run: bool
    notes: tuple[str, ...] = ()


# --- the steps ------------------------------------------------------------------------

# DDL version 2's `changes` table, frozen here as it was then (schema.sql's may change in
# a later version, which then adds a step of its own).
_CHANGES_V2 = """
CREATE TABLE IF NOT EXISTS {s}.changes (
    xid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    kind           text        NOT NULL,
    name           text        NOT NULL,
    version        bigint      NOT NULL,
    op             text        NOT NULL,
    written_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT changes_pkey PRIMARY KEY (xid, seq)
)"""

# The first change feed woke its readers from a trigger on `changes`; the writes have
# sent their NOTIFY themselves since, at a third of its cost, so a store made then
# notified twice. Looked up first: DROP TRIGGER IF EXISTS locks the table even when the
# trigger is not there.
_FEED_TRIGGER = """
SELECT EXISTS (SELECT 1 FROM pg_trigger
               WHERE tgname = 'changes_notify' AND tgrelid = to_regclass(%(table)s))
"""


# Who may read and write the heads, besides their owner (0: PUBLIC): a store made before
# the feed has roles that write `documents` and must now write `changes` in the same
# statements (docs/reliability.md, Least privilege), and readers that may follow it.
_GRANTEES = """
SELECT DISTINCT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
       a.privilege_type
FROM pg_class c, aclexplode(c.relacl) a
WHERE c.oid = to_regclass(%(documents)s) AND a.grantee <> c.relowner
  AND a.privilege_type IN ('SELECT', 'INSERT')
ORDER BY 1, 2
"""

_EXISTS = "SELECT to_regclass(%(table)s) IS NOT NULL"


def _changes_table(s: q.Statements) -> Plan[None]:
    ((existed,),) = yield Stmt(_EXISTS, {"table": f"{s.quoted}.changes"})
    yield Stmt(s(_CHANGES_V2))
    if not existed:
        for role, privilege in (yield Stmt(_GRANTEES, {"documents": f"{s.quoted}.documents"})):
            if privilege == "SELECT":
                yield Stmt(f"GRANT SELECT ON {s.quoted}.changes TO {role}")
            else:
                yield Stmt(f"GRANT INSERT, DELETE ON {s.quoted}.changes TO {role}")
                yield Stmt(f"GRANT USAGE ON SEQUENCE {s.quoted}.changes_seq_seq TO {role}")
    ((trigger,),) = yield Stmt(_FEED_TRIGGER, {"table": f"{s.quoted}.changes"})
    if trigger:
        yield Stmt(s("DROP TRIGGER changes_notify ON {s}.changes"))
    yield Stmt(s("DROP FUNCTION IF EXISTS {s}.notify_changes()"))


# The tables (and partitions of versions) whose `data` is not lz4-compressed yet, where
# the server was built with lz4 (schema.sql sets it on the stores it creates).
_LZ4_PENDING = """
SELECT c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'data'
WHERE n.nspname = %(schema)s
  AND (c.relname IN ('documents', 'versions')
       OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%(versions)s)))
  AND a.attcompression IS DISTINCT FROM 'l'
  AND EXISTS (SELECT 1 FROM pg_settings
              WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals))
ORDER BY 1
"""


def _lz4(s: q.Statements) -> Plan[None]:
    rows = yield Stmt(_LZ4_PENDING, {"schema": s.schema, "versions": f"{s.quoted}.versions"})
    for (table,) in rows:
        name = sql.Identifier(table).as_string(None)
        yield Stmt(f"ALTER TABLE {s.quoted}.{name} ALTER COLUMN data SET COMPRESSION lz4")


def _views_handed_over(s: q.Statements) -> Plan[None]:
    # Nothing to run: the upgrade replaces only the views schema.sql still has, so a
    # store's `messages` view stays as it is until the layer that owns it replaces it.
    return
    yield


_CONCURRENTLY = (
    "none that stops writes: built CONCURRENTLY (on a partitioned versions, one partition "
    "at a time, each attached in a moment)"
)

STEPS: tuple[Step, ...] = (
    Step(
        2,
        "changes_table",
        "the change feed's table `changes` (docs/changes.md), granted to the roles that "
        "read or write `documents`; the early feed's NOTIFY trigger dropped where a store "
        "has it (the writes notify themselves)",
        "none on documents or versions: a new table (and, where the old trigger is, `changes` for a moment)",
        run=_changes_table,
    ),
    Step(
        2,
        "key_document_index",
        "an index of the idempotency keys by the document they wrote (purge removes a "
        "document's keys through it)",
        _CONCURRENTLY,
        index=Index(
            "versions_key_document_idx",
            "versions",
            "((data ->> 'kind'), (data ->> 'name')) WHERE kind = '_idempotency'",
        ),
    ),
    Step(
        2,
        "key_age_index",
        "an index of the idempotency keys by kind and age (prune(older_than=) removes old keys through it)",
        _CONCURRENTLY,
        index=Index(
            "versions_key_age_idx",
            "versions",
            "((data ->> 'kind'), written_at) WHERE kind = '_idempotency'",
        ),
    ),
    Step(
        2,
        "lz4",
        "lz4 compression of `data` for values written from now on, where the server has "
        "lz4 and a store does not use it yet (no value is rewritten)",
        "documents and versions for a moment each, only where it is not set yet (a "
        "catalog change, no rewrite)",
        run=_lz4,
    ),
    Step(
        3,
        "messages_view_kept",
        "the `messages` view is no longer the core's (the layer whose logs it reads makes "
        "it): a store's view is kept as it is, not dropped",
        "none",
        run=_views_handed_over,
    ),
)

VIEWS = MigrationStep(
    0,
    "views",
    "the analysts' views (docs/analytics.md) replaced by this release's, from schema.sql",
    "each view for a moment (a query on it waits); none on documents or versions",
    True,
)
"""The last step of every upgrade (its version is the release's): the views are derived
from the tables, so they are replaced from schema.sql rather than kept step by step."""

# The first release indexed every head (documents_data_gin_idx, GIN over `data`, and
# documents_kind_updated_idx): each put pays for them, and DDL version 2 has none. An
# upgrade keeps them (a where= filter or a listing by recency may rely on them) and says so.
_FIRST_RELEASE_INDEXES = ("documents_data_gin_idx", "documents_kind_updated_idx")


# --- statements -----------------------------------------------------------------------

RECORD = "SELECT data::text FROM {s}.documents WHERE kind = '_docstore' AND name = 'schema'"

STORE_EXISTS = "SELECT to_regclass(%(documents)s) IS NOT NULL"

# A step done, while the store is still below its version: the version stays until the
# last step of it is done, so a release that knows only the old one keeps writing.
RECORD_STEP = """
UPDATE {s}.documents SET updated_at = now(), data = jsonb_build_object(
    'ddl_version', (data ->> 'ddl_version')::int,
    'upgrade', jsonb_build_object(
        'to', %(to)s::int,
        'done', CASE WHEN (data #>> '{upgrade,to}')::int = %(to)s::int
                     THEN data #> '{upgrade,done}' ELSE '[]' END || to_jsonb(%(step)s::text)))
WHERE kind = '_docstore' AND name = 'schema' AND (data ->> 'ddl_version')::int < %(to)s::int
"""

# A version reached, and which release reached it: a release that knows only an
# earlier version names it as the one to install.
RECORD_VERSION = """
UPDATE {s}.documents SET updated_at = now(), data = jsonb_strip_nulls(jsonb_build_object(
    'ddl_version', %(version)s::int, 'release', %(release)s::text))
WHERE kind = '_docstore' AND name = 'schema' AND (data ->> 'ddl_version')::int < %(version)s::int
"""

RECORD_RELEASE = """
UPDATE {s}.documents SET data = data || jsonb_build_object('release', %(release)s::text)
WHERE kind = '_docstore' AND name = 'schema' AND NOT data ? 'release'
"""

TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended(%(key)s, 0))"

# An index: whether it is valid, and whether another backend is at work on it: building
# it (its table's build reports the index only once the index is visible, so a build
# of that table not naming its index yet counts too), or dropping it (a DROP INDEX
# CONCURRENTLY holds its lock on the index). A build whose client was killed goes on in
# its backend until it ends.
INDEX_STATE = """
SELECT i.indisvalid,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
               WHERE p.relid = i.indrelid AND p.index_relid IN (0, c.oid)
                 AND p.pid <> pg_backend_pid())
       OR EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.relation = c.oid AND l.pid <> pg_backend_pid()
                    AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock'))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_index i ON i.indexrelid = c.oid
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
"""

RELKIND = "SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%(table)s)"

PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass(%(table)s) ORDER BY c.relname
"""

# Whether the parent index has an index of this partition attached.
ATTACHED = """
SELECT EXISTS (
    SELECT 1 FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
    WHERE i.inhparent = to_regclass(%(parent)s) AND x.indrelid = to_regclass(%(partition)s))
"""

OLD_INDEXES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(names)s) ORDER BY 1
"""

TIMEOUTS = "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"


def ddl_version() -> int:
    """The DDL version this release of docstore creates, and upgrades older stores to
    (``docstore status`` shows it beside the store's own; docs/upgrading.md)."""
    return q.release_ddl_version()


def release_name() -> str | None:
    """This docstore's version, as installed (None in a source tree never installed)."""
    try:
        return _dist_version("docstore")
    except PackageNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class State:
    """What a store holds of docstore: its tables, the record of its DDL version."""

    exists: bool
    record: dict[str, Any] | None = None
    layout: tuple[str, int] | None = None
    old_indexes: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        return int((self.record or {}).get("ddl_version", 0))

    @property
    def done(self) -> frozenset[str]:
        upgrade = (self.record or {}).get("upgrade") or {}
        return frozenset(upgrade.get("done") or ())


def _record(rows: list[tuple[Any, ...]]) -> dict[str, Any] | None:
    if not rows:
        return None
    found = orjson.loads(rows[0][0])
    return found if isinstance(found, dict) else None


def _child_index(partition: str, index: Index) -> str:
    """The name of ``index``'s index on one partition (``versions_p3_key_age_idx``)."""
    suffix = index.name[len(index.table) :]
    name = partition + suffix
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.sha256(partition.encode()).hexdigest()[:10]
    return f"{partition[: 63 - len(suffix) - 11]}_{digest}{suffix}"


class LayoutPlans(CoreBase):
    """Plans that create a store, upgrade its layout, and check it before writes."""

    @property
    def _lock_key(self) -> dict[str, str]:
        return {"key": "docstore:" + self.sql.schema}

    # --- messages ----------------------------------------------------------------------

    def newer(self, version: int, release: str | None) -> DDLVersionMismatch:
        """The store is at a DDL version this release does not know."""
        known = q.release_ddl_version()
        if release is not None and not re.fullmatch(r"[0-9][0-9A-Za-z.+!-]{0,40}", str(release)):
            release = None  # it is read from the store: quoted only when it is a version
        install = (
            f"docstore {release} or later, the release that upgraded it (pip install 'docstore>={release}')"
            if release
            else f"a docstore release that knows DDL version {version}"
        )
        return DDLVersionMismatch(
            self.sql.schema,
            version,
            known,
            f"schema {self.sql.schema!r} is at DDL version {version}, newer than this "
            f"docstore release knows (DDL version {known}): it writes nothing there, since "
            f"it would leave out what version {version} adds. Install {install}; "
            "docs/upgrading.md",
        )

    def older(self, state: State) -> DDLVersionMismatch:
        """The store is at an earlier DDL version: it must be upgraded first."""
        known = q.release_ddl_version()
        under_way = ""
        if state.done:
            of = [s for s in STEPS if state.version < s.version <= known]
            under_way = f"; an upgrade is under way ({len(state.done)} of {len(of)} steps done)"
        return DDLVersionMismatch(
            self.sql.schema,
            state.version,
            known,
            f"schema {self.sql.schema!r} is at DDL version {state.version}, older than the "
            f"layout this docstore release writes (DDL version {known}): nothing was "
            "written. Upgrade the store first: `docstore migrate` (or store.init_schema()), "
            f"see docs/upgrading.md{under_way}",
        )

    def layout_problem(self, rows: list[tuple[Any, ...]]) -> DDLVersionMismatch | None:
        """Why this release must not write to the store whose record is ``rows``."""
        record = _record(rows)
        if record is None:
            return DDLVersionMismatch(
                self.sql.schema,
                None,
                q.release_ddl_version(),
                f"schema {self.sql.schema!r} has docstore's tables but no DDL version "
                "recorded: nothing was written; run store.init_schema() (or `docstore init`)",
            )
        state = State(True, record)
        if state.version > q.release_ddl_version():
            return self.newer(state.version, record.get("release"))
        if state.version < q.release_ddl_version():
            return self.older(state)
        return None

    # --- writes ------------------------------------------------------------------------

    def layout_checked(self, op: Op[T]) -> Op[T]:
        """``op``, first checking that the store is at this release's DDL version (the
        shells run it so until one passes, once per pool): nothing is written otherwise."""

        def plan() -> Plan[T]:
            problem = self.layout_problem((yield Stmt(self.sql(RECORD))))
            if problem is not None:
                raise problem
            return (yield from op.plan())

        return replace(op, plan=plan)

    # --- reading the store's state -----------------------------------------------------

    def _state(self) -> Op[State]:
        def plan() -> Plan[State]:
            ((exists,),) = yield Stmt(STORE_EXISTS, {"documents": f"{self.sql.quoted}.documents"})
            if not exists:
                return State(False)
            record = _record((yield Stmt(self.sql(RECORD))))
            layout = yield Stmt(q.VERSIONS_LAYOUT, {"schema": self.sql.schema})
            old = yield Stmt(OLD_INDEXES, {"schema": self.sql.schema, "names": list(_FIRST_RELEASE_INDEXES)})
            return State(
                True,
                record,
                (str(layout[0][0]), int(layout[0][1])) if layout else None,
                tuple(str(name) for (name,) in old),
            )

        return Op(plan, read_only=True, on_primary=True)

    def pending(self, state: State) -> list[Step]:
        """The steps a store in ``state`` has still to run, in order."""
        return [s for s in STEPS if s.version > state.version and s.name not in state.done]

    # --- init_schema -------------------------------------------------------------------

    def init_schema(self, partitions: int | None = None) -> Program[int]:
        """Create the store (schema.sql), or upgrade it to this release's DDL version
        (online steps only), or check it is there; returns the DDL version.

        ``partitions``: create ``versions`` hash-partitioned into that many partitions
        when it does not exist yet; an existing table must already have that layout.
        """
        if partitions is not None and (
            isinstance(partitions, bool)
            or not isinstance(partitions, int)
            or not 1 <= partitions <= q.MAX_PARTITIONS
        ):
            raise ValueError(
                f"partitions must be None or an int from 1 to {q.MAX_PARTITIONS}, not {partitions!r}"
            )
        return self._init(partitions)

    def _init(self, partitions: int | None) -> Program[int]:
        release = q.release_ddl_version()
        for _ in range(3):
            state = yield self._state()
            if state.record is None:
                try:
                    if (yield self._create(partitions)):
                        return release
                except DocStoreError as exc:
                    # Created at the same moment by another process: its CREATE ... IF NOT
                    # EXISTS can still collide with ours (seen once, 4 init_schema at once
                    # through PgBouncer: a UniqueViolation on pg_namespace). Look again.
                    if not isinstance(exc.__cause__, pge.UniqueViolation | pge.DuplicateObject):
                        raise
                continue  # made meanwhile, by another process: look again
            self._same_layout(state, partitions)
            if state.version > release:
                raise self.newer(state.version, state.record.get("release"))
            if state.version < release:
                yield from self._upgrade(state, dry_run=False, offline_ok=False, progress=None)
            return release
        raise DocStoreError(f"schema {self.sql.schema!r}: init_schema found no store it could create or read")

    def _same_layout(self, state: State, partitions: int | None) -> None:
        if partitions is None or state.layout is None or state.layout == ("p", partitions):
            return
        relkind, count = state.layout
        now = f"hash-partitioned into {count}" if relkind == "p" else "not partitioned"
        raise DocStoreError(
            f"schema {self.sql.schema!r}: table versions exists and is {now}; "
            f"init_schema(partitions={partitions}) cannot change the layout of "
            "a table that holds data: `docstore migrate --partitions N` (store.migrate("
            "partitions=N)) moves a plain one into partitions, online (docs/upgrading.md)"
        )

    def _create(self, partitions: int | None) -> Op[bool]:
        """Run schema.sql on a schema holding no store; False when a store is found there
        once under the lock (another process made it meanwhile)."""

        def plan() -> Plan[bool]:
            yield Stmt(q.SCHEMA_LOCK, self._lock_key)
            ((exists,),) = yield Stmt(STORE_EXISTS, {"documents": f"{self.sql.quoted}.documents"})
            if exists and _record((yield Stmt(self.sql(RECORD)))) is not None:
                return False
            if partitions is not None:
                layout = yield Stmt(q.VERSIONS_LAYOUT, {"schema": self.sql.schema})
                if not layout:
                    yield Stmt(self.sql.partitioned_versions(partitions))
                else:
                    self._same_layout(State(True, None, (str(layout[0][0]), int(layout[0][1]))), partitions)
            yield Stmt(self.sql.ddl())
            release = release_name()
            if release is not None:
                yield Stmt(self.sql(RECORD_RELEASE), {"release": release})
            return True

        return Op(plan, atomic=True, layout=False)

    # --- migrate -----------------------------------------------------------------------

    def migrate(
        self, dry_run: bool = False, offline_ok: bool = False, progress: Callable[[str], None] | None = None
    ) -> Program[Migration]:
        """Upgrade the store to this release's DDL version; ``dry_run`` only reports."""
        state = yield self._state()
        if state.record is None:
            raise SchemaMissing(
                f"schema {self.sql.schema!r} holds no docstore store to upgrade: create "
                "one with store.init_schema() (or `docstore init`)"
            )
        if state.version > q.release_ddl_version():
            raise self.newer(state.version, state.record.get("release"))
        return (yield from self._upgrade(state, dry_run, offline_ok, progress))

    def _upgrade(
        self, state: State, dry_run: bool, offline_ok: bool, progress: Callable[[str], None] | None
    ) -> Program[Migration]:
        release = q.release_ddl_version()
        say = progress or (lambda line: None)
        pending = self.pending(state) if state.version < release else []
        notes = tuple(
            f"{name} is kept: an index of every head the first release made, paid by every "
            "put; docs/upgrading.md says how to replace it by per-kind indexes"
            for name in state.old_indexes
        )
        steps = (
            (*(s.info for s in pending), replace(VIEWS, version=release)) if state.version < release else ()
        )
        report = Migration(self.sql.schema, state.version, release, steps, dry_run, notes)
        offline = [s.name for s in pending if not s.online]
        if dry_run or not steps:
            return report
        if offline and not offline_ok:
            raise DocStoreError(
                f"schema {self.sql.schema!r}: the upgrade to DDL version {release} has steps "
                f"that stop writes while they run ({', '.join(offline)}); nothing was "
                "changed. Run them at a quiet time: `docstore migrate --yes`, or "
                "store.migrate(offline_ok=True) (docs/upgrading.md)"
            )
        yield self._session()
        for i, step in enumerate(pending):
            say(f"DDL {step.version}, {step.name}: {step.summary}")
            if step.index is not None:
                yield from self._build(step, say)
            else:
                yield from self._locked(step.name, partial(self._step_body, step))
            last_of_version = i + 1 == len(pending) or pending[i + 1].version != step.version
            if last_of_version and step.version < release:
                yield from self._locked("record", partial(self._record_version, step.version))
        say(f"DDL {release}, views: {VIEWS.summary}")
        yield from self._locked("views", self._finish)
        say(f"schema {self.sql.schema!r} is at DDL version {release}")
        return report

    def _session(self) -> Op[None]:
        """The upgrade's own connection, freed of statement and lock timeouts a role or
        the store's options set: an index build takes as long as the table needs, and
        its waits for running transactions are no deadlock to break."""

        def plan() -> Plan[None]:
            ((statement, lock),) = yield Stmt(TIMEOUTS)
            if statement != "0":
                yield Stmt("SET statement_timeout = 0")
            if lock != "0":
                yield Stmt("SET lock_timeout = 0")

        return Op(plan, own_connection=True, layout=False)

    def _sleep(self, seconds: float) -> Op[Any]:
        # On the server: the plans stay free of I/O, and no transaction is open meanwhile.
        return Op(
            partial(one_statement, Stmt("SELECT pg_sleep(%(s)s)", {"s": seconds})),
            read_only=True,
            own_connection=True,
        )

    def _locked(self, what: str, body: Callable[[], Plan[None]]) -> Program[None]:
        """Run ``body`` in a transaction of its own under the schema's advisory lock, each
        lock it takes under LOCK_TIMEOUT_MS: on a timeout, let go and try again later,
        up to LOCK_PATIENCE seconds."""

        def plan() -> Plan[bool]:
            ((got,),) = yield Stmt(TRY_LOCK, self._lock_key)
            if not got:
                return False
            yield Stmt(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
            yield from body()
            return True

        waited, pause = 0.0, 0.02
        while True:
            try:
                done = yield Op(plan, atomic=True, own_connection=True, layout=False)
            except pge.LockNotAvailable:
                done = False
            if done:
                return
            if waited >= LOCK_PATIENCE:
                raise DocStoreError(
                    f"schema {self.sql.schema!r}: upgrade step {what} could not take its locks "
                    f"within {LOCK_PATIENCE:.0f} s (each wait cut at {LOCK_TIMEOUT_MS} ms "
                    "so that writes go on): a transaction holds them that long (see "
                    "pg_stat_activity). The steps done so far are recorded: run it again"
                )
            yield self._sleep(pause)
            waited += pause
            pause = min(pause * 2, 1.0)

    def _step_body(self, step: Step) -> Plan[None]:
        state = State(True, _record((yield Stmt(self.sql(RECORD)))))
        if state.version >= step.version or step.name in state.done:
            return  # done meanwhile by another process
        if step.run is not None:
            yield from step.run(self.sql)
        yield Stmt(self.sql(RECORD_STEP), {"to": step.version, "step": step.name})

    def _record_version(self, version: int) -> Plan[None]:
        yield Stmt(self.sql(RECORD_VERSION), {"version": version, "release": release_name()})

    def _finish(self) -> Plan[None]:
        release = q.release_ddl_version()
        if State(True, _record((yield Stmt(self.sql(RECORD))))).version >= release:
            return
        yield Stmt(self.sql.views_ddl())
        yield from self._record_version(release)

    def _read(self, query: str, **params: Any) -> Op[Any]:
        return Op(partial(one_statement, Stmt(query, params)), read_only=True, own_connection=True)

    def _build(self, step: Step, say: Callable[[str], None]) -> Program[None]:
        """Build a step's index CONCURRENTLY, then record the step."""
        index = step.index
        assert index is not None
        table = f"{self.sql.quoted}.{sql.Identifier(index.table).as_string(None)}"
        rows = yield self._read(INDEX_STATE, schema=self.sql.schema, name=index.name)
        if not (rows and rows[0][0]):
            ((relkind,),) = yield self._read(RELKIND, table=table)
            if relkind == "p":
                yield from self._build_partitioned(index, table, say)
            else:
                yield from self._concurrently(index.name, table, index.definition, say)
        yield from self._locked(step.name, partial(self._step_body, step))

    def _build_partitioned(self, index: Index, table: str, say: Callable[[str], None]) -> Program[None]:
        """A partitioned table takes no CREATE INDEX CONCURRENTLY: the parent's index is
        made ON ONLY the parent (invalid, no rows read), each partition's built
        CONCURRENTLY and attached; the last one attached makes the parent's valid."""
        name = sql.Identifier(index.name).as_string(None)
        parent = f"{self.sql.quoted}.{name}"

        def on_parent() -> Plan[None]:
            yield Stmt(f"CREATE INDEX IF NOT EXISTS {name} ON ONLY {table} {index.definition}")

        yield from self._locked(index.name, on_parent)
        for (partition,) in (yield self._read(PARTITIONS, table=table)):
            where = f"{self.sql.quoted}.{sql.Identifier(partition).as_string(None)}"
            ((attached,),) = yield self._read(ATTACHED, parent=parent, partition=where)
            if attached:
                continue
            child = _child_index(partition, index)
            yield from self._concurrently(child, where, index.definition, say)
            yield from self._locked(child, partial(self._attach, parent, where, child))
        rows = yield self._read(INDEX_STATE, schema=self.sql.schema, name=index.name)
        if not (rows and rows[0][0]):
            raise DocStoreError(
                f"schema {self.sql.schema!r}: index {index.name} is still invalid once every "
                "partition's index was attached (a partition added meanwhile?); run the "
                "upgrade again"
            )

    def _attach(self, parent: str, partition: str, child: str) -> Plan[None]:
        ((attached,),) = yield Stmt(ATTACHED, {"parent": parent, "partition": partition})
        if not attached:
            name = f"{self.sql.quoted}.{sql.Identifier(child).as_string(None)}"
            yield Stmt(f"ALTER INDEX {parent} ATTACH PARTITION {name}")

    def _table_free(self, table: str) -> Program[bool]:
        """Whether no other index build (nor VACUUM, nor DDL) works on ``table`` now: a
        LOCK TABLE in its lock mode, waited for without a snapshot (an index build waits
        for every snapshot older than its own: two builds of one table, the second
        waiting for the first's lock in its CREATE INDEX, can deadlock). Writes are not
        held up: this mode does not conflict with theirs."""

        def plan() -> Plan[bool]:
            yield Stmt("SET LOCAL lock_timeout = '2s'")  # past deadlock_timeout: autovacuum yields
            yield Stmt(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE")
            return True

        try:
            free: bool = yield Op(plan, atomic=True, own_connection=True, layout=False)
        except pge.LockNotAvailable:
            free = False
        return free

    def _concurrently(
        self, name: str, table: str, definition: str, say: Callable[[str], None]
    ) -> Program[None]:
        """CREATE INDEX CONCURRENTLY ``name``, whatever an earlier attempt left: an index
        being built (by another upgrade, or by the backend of a killed one) is waited
        for, an invalid one no backend builds (a build cut short) is dropped and built
        again."""
        ident = sql.Identifier(name).as_string(None)
        create = Stmt(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {ident} ON {table} {definition}")
        drop = Stmt(f"DROP INDEX CONCURRENTLY IF EXISTS {self.sql.quoted}.{ident}")
        tries, idle = 0, False
        while True:
            rows = yield self._read(INDEX_STATE, schema=self.sql.schema, name=name)
            if rows and rows[0][0]:
                return
            if rows and rows[0][1]:
                idle = False
                yield self._sleep(0.2)
                continue
            if rows and not idle:
                # A build ends its progress report a moment before its last commit:
                # the index is invalid only if it still is after a pause.
                idle = True
                yield self._sleep(random.uniform(0.2, 0.4))
                continue
            tries += 1
            if tries > 6:
                raise DocStoreError(
                    f"schema {self.sql.schema!r}: index {name} is still not built after six "
                    "attempts; see the server's log for why, then run the upgrade again"
                )
            if rows:
                say(f"  {name}: an invalid index left by a build cut short, dropped to build it again")
                # Another upgrade dropping it at the same moment fails one: look again.
                with suppress(pge.InternalError, pge.DeadlockDetected):
                    yield Op(partial(one_statement, drop), own_connection=True, layout=False)
                continue
            if not (yield from self._table_free(table)):
                tries -= 1  # busy, not failed
                yield self._sleep(0.2)
                continue
            say(f"  {name}: building CONCURRENTLY")
            try:
                yield Op(partial(one_statement, create), own_connection=True, layout=False)
            except (pge.DuplicateTable, pge.UniqueViolation, pge.InternalError):
                pass  # another upgrade made it at the same moment: look again
            except pge.DeadlockDetected:
                # Two builds of the table started at the same moment, one waiting for
                # the other's lock while that one waits for its snapshot: one was
                # cancelled. Look again after a pause that differs between the two.
                yield self._sleep(random.uniform(0.05, 0.5))
            except pge.QueryCanceled as exc:
                raise DocStoreError(
                    f"schema {self.sql.schema!r}: building index {name} was cancelled "
                    f"({str(exc).strip().splitlines()[0]}); the steps done so far are recorded "
                    "and the index left behind is rebuilt by the next run. A statement_timeout "
                    "the upgrade cannot lift (PgBouncer's query_timeout, a role setting read "
                    "through a pooler) cuts it: run `docstore migrate` on a direct connection"
                ) from None
