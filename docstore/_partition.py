"""Moving an existing store's ``versions`` into the hash-partitioned layout, online
(docs/upgrading.md, "Partitioning an existing store").

PostgreSQL cannot partition a table in place, so the rows move to a new table while
writes go on, as pg_repack moves a table: ``versions_new`` is created partitioned; a
trigger on ``versions`` copies every write to it from then on; the history is copied in
batches (each row locked against deletion for its batch, so a delete either happens
before the copy sees the row or waits and is then copied as a delete by the trigger);
then, in one statement under an exclusive lock, the new table takes the old one's name
and its indexes the old ones' names; the views are replaced and the old table dropped
after. Every stage is recorded in the store and idempotent: a move cut short goes on
where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from psycopg import sql

from . import _sql as q
from ._ddl import RECORD, LayoutPlans, Migration, MigrationStep, State, _record
from ._plan import Op, Plan, Program, Stmt
from .errors import DocStoreError

__all__ = ["COPY_BATCH", "PartitionPlans"]

COPY_BATCH = 5000
"""Version rows copied per transaction."""

_STEPS = (
    MigrationStep(
        0,
        "partition_table",
        "a table versions_new, hash-partitioned on (kind, name), with the indexes and grants of versions",
        "none on documents or versions: a new table",
        True,
    ),
    MigrationStep(
        0,
        "partition_mirror",
        "a trigger on versions that copies each write to versions_new until the swap",
        "versions for a moment (CREATE TRIGGER); until the swap each version row written "
        "costs a trigger call",
        True,
    ),
    MigrationStep(
        0,
        "partition_copy",
        f"every version row copied to versions_new, {COPY_BATCH:,} a transaction, resumable",
        "none that stops writes: a batch's rows are key-share locked while it runs (a prune "
        "or purge of them waits for it)",
        True,
    ),
    MigrationStep(
        0,
        "partition_swap",
        "versions_new renamed versions, then the views replaced and the old table dropped",
        "versions, exclusively, for the renames (one statement): a few milliseconds",
        True,
    ),
)

# Each write to versions, repeated on versions_new (rows never change in place, but an
# UPDATE is copied too). Dynamic SQL on TG_TABLE_SCHEMA: the function text holds no
# schema name to quote.
_MIRROR_FUNCTION = """
CREATE OR REPLACE FUNCTION {s}.docstore_versions_mirror() RETURNS trigger
LANGUAGE plpgsql AS $docstore_mirror$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        EXECUTE format('DELETE FROM %I.versions_new WHERE kind = $1 AND name = $2 AND version = $3',
                       TG_TABLE_SCHEMA)
        USING OLD.kind, OLD.name, OLD.version;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('INSERT INTO %I.versions_new SELECT ($1).* ON CONFLICT DO NOTHING',
                       TG_TABLE_SCHEMA)
        USING NEW;
    END IF;
    RETURN NULL;
END
$docstore_mirror$
"""

_MIRROR_EXISTS = """
SELECT EXISTS (SELECT 1 FROM pg_trigger
               WHERE tgname = 'docstore_versions_mirror' AND tgrelid = to_regclass(%(table)s))
"""

# A batch of the history, in primary-key order after the last key copied; each row is
# key-share locked so that a delete of it waits for the batch (and is then mirrored).
_COPY = """
WITH batch AS (
    SELECT * FROM {s}.versions
    WHERE %(after)s::text[] IS NULL
       OR (kind, name, version) > ((%(after)s::text[])[1], (%(after)s::text[])[2],
                                   (%(after)s::text[])[3]::bigint)
    ORDER BY kind, name, version
    LIMIT %(batch)s
    FOR KEY SHARE
), copied AS (
    INSERT INTO {s}.versions_new SELECT * FROM batch ON CONFLICT DO NOTHING
)
SELECT kind, name, version::text, (SELECT count(*) FROM batch)
FROM batch ORDER BY kind DESC, name DESC, version DESC LIMIT 1
"""

_RECORD_MOVE = """
UPDATE {s}.documents SET data = jsonb_set(data, '{partitioning}', %(move)s::jsonb)
WHERE kind = '_docstore' AND name = 'schema'
"""

_RECORD_MOVED = """
UPDATE {s}.documents SET data = data - 'partitioning'
WHERE kind = '_docstore' AND name = 'schema'
"""

_GRANTS = """
SELECT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type
FROM pg_class c, aclexplode(c.relacl) a
WHERE c.oid = to_regclass(%(table)s) AND a.grantee <> c.relowner
ORDER BY 1, 2
"""

# The indexes of versions besides its primary key (the idempotency keys', and any a user
# added, such as docs/performance.md's GIN index): the new table gets each of them.
_INDEXES = """
SELECT c.relname, i.indisunique, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass(%(table)s) AND NOT i.indisprimary ORDER BY 1
"""

_EXISTS = "SELECT to_regclass(%(table)s) IS NOT NULL"

# Views on versions that schema.sql does not make (a layer's `messages`, an
# app's own): a view names a table by its identity, so each would follow versions to
# versions_old. Their definitions, read before the swap (where they still say
# `versions`), are run again after it, and the views then read the new table.
_OTHER_VIEWS = """
SELECT DISTINCT v.oid::regclass::text, pg_get_viewdef(v.oid), array_to_string(v.reloptions, ', ')
FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
WHERE d.refobjid = to_regclass(%(table)s) AND v.relkind = 'v' AND v.oid <> d.refobjid
ORDER BY 1
"""


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


class PartitionPlans(LayoutPlans):
    """The layout plans, with the move of a plain ``versions`` into hash partitions."""

    def migrate(
        self,
        dry_run: bool = False,
        offline_ok: bool = False,
        progress: Callable[[str], None] | None = None,
        partitions: int | None = None,
    ) -> Program[Migration]:
        """Upgrade the store to this release's DDL version, then (``partitions``) move
        ``versions`` into that many hash partitions; ``dry_run`` only reports."""
        if partitions is not None and (
            isinstance(partitions, bool)
            or not isinstance(partitions, int)
            or not 1 <= partitions <= q.MAX_PARTITIONS
        ):
            raise ValueError(
                f"partitions must be None or an int from 1 to {q.MAX_PARTITIONS}, not {partitions!r}"
            )
        report = yield from super().migrate(dry_run, offline_ok, progress)
        if partitions is None:
            return report
        state = yield self._state()
        moving = self._moving(state)
        if state.layout == ("p", partitions) and moving is None:
            ((left,),) = yield self._read(_EXISTS, table=f"{self.sql.quoted}.versions_old")
            if left and not dry_run:  # a move cut short after its swap
                yield from self._locked("partition_views", self._views)
                yield from self._locked("partition_drop", self._drop_old)
            return report
        if state.layout is not None and state.layout[0] == "p":
            count = state.layout[1]
            raise DocStoreError(
                f"schema {self.sql.schema!r}: versions is hash-partitioned into {count} "
                f"already; moving it to {partitions} partitions is not offered (only a plain "
                "versions table is moved into partitions)"
            )
        if moving is not None and moving.get("to") != partitions:
            raise DocStoreError(
                f"schema {self.sql.schema!r}: a move of versions into {moving.get('to')} "
                f"partitions is under way; run it again with partitions={moving.get('to')}"
            )
        steps = tuple(replace(s, version=report.release_version) for s in _STEPS)
        report = replace(report, steps=report.steps + steps)
        if dry_run:
            return report
        yield from self._move(partitions, progress or (lambda line: None))
        return report

    def _moving(self, state: State) -> dict[str, Any] | None:
        found = (state.record or {}).get("partitioning")
        return found if isinstance(found, dict) else None

    def _move(self, partitions: int, say: Callable[[str], None]) -> Program[None]:
        yield self._session()
        say(f"partition_table: versions_new, {partitions} hash partitions")
        yield from self._locked("partition_table", lambda: self._new_table(partitions))
        if self._moving((yield self._state())) is None:
            return  # another process finished the move meanwhile
        say("partition_mirror: every write to versions copied to versions_new from now on")
        yield from self._locked("partition_mirror", self._mirror)
        say("partition_copy: the history, in batches")
        copied = 0
        while True:
            batch: tuple[int, bool] = yield from self._copy_batch()
            copied += batch[0]
            if copied and copied % (COPY_BATCH * 20) < COPY_BATCH:
                say(f"  {copied:,} rows copied")
            if batch[1]:
                break
        say(f"  {copied:,} rows copied")
        say("partition_swap: versions_new becomes versions")
        yield from self._locked("partition_swap", self._swap)
        yield from self._locked("partition_views", self._views)
        yield from self._locked("partition_drop", self._drop_old)

    def _recorded_move(self) -> Plan[dict[str, Any] | None]:
        move = (_record((yield Stmt(self.sql(RECORD)))) or {}).get("partitioning")
        return move if isinstance(move, dict) else None

    def _new_table(self, partitions: int) -> Plan[None]:
        s = self.sql
        state = _record((yield Stmt(s(RECORD)))) or {}
        if "partitioning" not in state:
            ((relkind,),) = yield Stmt(
                "SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%(t)s)",
                {"t": f"{s.quoted}.versions"},
            )
            if relkind == "p":
                return  # moved meanwhile by another process
            ((exists,),) = yield Stmt(
                "SELECT to_regclass(%(t)s) IS NOT NULL", {"t": f"{s.quoted}.versions_new"}
            )
            if exists:
                raise DocStoreError(
                    f"schema {s.schema!r}: a table versions_new is there already, and no move "
                    "of versions is recorded: it is not docstore's; rename or drop it first"
                )
        ddl = s.partitioned_versions(partitions)
        # schema.sql's own definition of versions, under the new name.
        ddl = ddl.replace(f"{s.quoted}.versions (", f"{s.quoted}.versions_new (")
        ddl = ddl.replace("CONSTRAINT versions_pkey", "CONSTRAINT versions_new_pkey")
        # The partitions get their final names now (a plain versions has none): the
        # swap then renames only the two tables and their own indexes.
        ddl = ddl.replace(f"PARTITION OF {s.quoted}.versions ", f"PARTITION OF {s.quoted}.versions_new ")
        yield Stmt(ddl)
        # Each index of versions, on the empty new table (built at once), under a name of
        # the move's own until the swap gives it the old one's.
        indexes = dict(state.get("partitioning", {}).get("indexes") or {})
        if not indexes:
            for i, (name, _, _) in enumerate((yield Stmt(_INDEXES, {"table": f"{s.quoted}.versions"}))):
                indexes[f"docstore_move_{i}"] = name
        definitions = {
            name: (unique, definition)
            for name, unique, definition in (yield Stmt(_INDEXES, {"table": f"{s.quoted}.versions"}))
        }
        for temporary, name in indexes.items():
            if name not in definitions:
                continue  # dropped meanwhile: the swap finds nothing to rename either
            unique, definition = definitions[name]
            yield Stmt(
                f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {_ident(temporary)} "
                f"ON {s.quoted}.versions_new{definition[definition.index(' USING ') :]}"
            )
        for grantee, privilege in (yield Stmt(_GRANTS, {"table": f"{s.quoted}.versions"})):
            yield Stmt(f"GRANT {privilege} ON {s.quoted}.versions_new TO {grantee}")
        # lz4 where the server has it, as schema.sql sets it: the parent (for partitions
        # added later) and each partition.
        rows = yield Stmt(
            "SELECT c.relname FROM pg_class c "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'data' "
            "WHERE (c.oid = to_regclass(%(t)s) OR c.oid IN (SELECT inhrelid FROM pg_inherits "
            "WHERE inhparent = to_regclass(%(t)s))) AND a.attcompression IS DISTINCT FROM 'l' "
            "AND EXISTS (SELECT 1 FROM pg_settings "
            "WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals))",
            {"t": f"{s.quoted}.versions_new"},
        )
        for (partition,) in rows:
            yield Stmt(f"ALTER TABLE {s.quoted}.{_ident(partition)} ALTER COLUMN data SET COMPRESSION lz4")
        move = {**state.get("partitioning", {}), "to": partitions, "indexes": indexes}
        yield Stmt(s(_RECORD_MOVE), {"move": orjson.dumps(move).decode()})

    def _mirror(self) -> Plan[None]:
        s = self.sql
        if (yield from self._recorded_move()) is None:
            return  # swapped meanwhile by another process: versions_new is gone
        yield Stmt(s(_MIRROR_FUNCTION))
        ((exists,),) = yield Stmt(_MIRROR_EXISTS, {"table": f"{s.quoted}.versions"})
        if not exists:
            yield Stmt(
                f"CREATE TRIGGER docstore_versions_mirror AFTER INSERT OR UPDATE OR DELETE ON "
                f"{s.quoted}.versions FOR EACH ROW EXECUTE FUNCTION {s.quoted}.docstore_versions_mirror()"
            )

    def _copy_batch(self) -> Program[tuple[int, bool]]:
        """One batch of the history, from the position recorded; (rows, whether it was the last)."""
        s = self.sql

        def plan() -> Plan[tuple[int, bool]]:
            move = yield from self._recorded_move()
            if move is None:
                return 0, True  # swapped meanwhile by another process
            after = move.get("after")
            rows = yield Stmt(s(_COPY), {"after": after, "batch": COPY_BATCH})
            if not rows:
                return 0, True
            kind, name, version, count = rows[0]
            move = {**move, "after": [kind, name, version]}
            yield Stmt(s(_RECORD_MOVE), {"move": orjson.dumps(move).decode()})
            return int(count), int(count) < COPY_BATCH

        done: tuple[int, bool] = yield Op(plan, atomic=True, own_connection=True, layout=False)
        return done

    def _swap(self) -> Plan[None]:
        s = self.sql
        move = yield from self._recorded_move()
        if move is None:
            return  # swapped already by another process
        yield Stmt(f"LOCK TABLE {s.quoted}.versions IN ACCESS EXCLUSIVE MODE")
        # Only names of tables and indexes change; the old ones take names of the move's
        # own, the new ones the old names.
        statements = [
            f"DROP TRIGGER IF EXISTS docstore_versions_mirror ON {s.quoted}.versions",
            f"ALTER TABLE {s.quoted}.versions RENAME TO versions_old",
            f"ALTER INDEX {s.quoted}.versions_pkey RENAME TO versions_old_pkey",
            f"ALTER TABLE {s.quoted}.versions_new RENAME TO versions",
            f"ALTER INDEX {s.quoted}.versions_new_pkey RENAME TO versions_pkey",
        ]
        present = {name for (name, _, _) in (yield Stmt(_INDEXES, {"table": f"{s.quoted}.versions"}))}
        for i, (temporary, name) in enumerate((move.get("indexes") or {}).items()):
            if name in present:
                old = f"ALTER INDEX {s.quoted}.{_ident(name)} RENAME TO {_ident(f'docstore_old_{i}')}"
                statements.insert(3, old)
                statements.append(f"ALTER INDEX {s.quoted}.{_ident(temporary)} RENAME TO {_ident(name)}")
            else:  # dropped from versions since the move began
                statements.append(f"DROP INDEX IF EXISTS {s.quoted}.{_ident(temporary)}")
        for view, definition, options in (yield Stmt(_OTHER_VIEWS, {"table": f"{s.quoted}.versions"})):
            with_options = f" WITH ({options})" if options else ""
            statements.append(
                f"CREATE OR REPLACE VIEW {view}{with_options} AS {definition.rstrip().rstrip(';')}"
            )
        statements.append(s(_RECORD_MOVED))
        # One statement, one round trip, while writes wait for the lock.
        yield Stmt(";\n".join(statements))

    def _views(self) -> Plan[None]:
        # The views name versions by its identity: they followed it to versions_old,
        # which is dropped once they name the new one.
        yield Stmt(self.sql.views_ddl())

    def _drop_old(self) -> Plan[None]:
        s = self.sql
        yield Stmt(f"DROP TABLE IF EXISTS {s.quoted}.versions_old")
        yield Stmt(f"DROP FUNCTION IF EXISTS {s.quoted}.docstore_versions_mirror()")
