"""Every SQL statement docstore runs, in one place.

Statements are templates in which ``{s}`` stands for the store's schema; :class:`Statements`
binds them once per store with the schema quoted by ``psycopg.sql.Identifier``. All
user data travels as parameters. Each write is one statement: a CTE that moves the head
(the version check sits in its ``WHERE``) and inserts the version rows, so a write is
one round trip and atomic, and "no row returned" means "not written".
"""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources
from pathlib import Path

from psycopg import sql

from ._rows import HEAD_COLUMNS

__all__ = [
    "DURABLE_AGAIN",
    "SCHEMA_PLACEHOLDER",
    "Statements",
    "channel",
    "check_schema",
    "release_ddl_version",
    "schema_ddl",
]

SCHEMA_PLACEHOLDER = ':"schema"'
# schema.sql's line after which every statement is a view (docstore._ddl replaces them).
VIEWS_MARKER = "-- docstore:views"
SCHEMA_LITERAL_PLACEHOLDER = ":'schema'"

# Every statement about one document names its (kind, name) on every table it touches,
# not only through the join: a partitioned versions table is then pruned to one
# partition at plan time, and under Citus (both tables distributed on `name`, co-located)
# each one is a single-shard router query (docs/scaling.md).

# Every write inserts its one change (docs/changes.md) in the same statement, from the
# head it moved: an append of many items is still one change.
#
# The NOTIFY that wakes the feed's readers at once (sent at commit, once per transaction)
# is in the statement, for kinds registered with notify (snapshot kinds by default):
# {note} is NOTE or "", {note_join} NOTE_JOIN or "". Not for every kind, because
# PostgreSQL serialises the commits of notifying transactions (a lock held through the
# commit's WAL flush): concurrent writers appending with it commit several times slower.
# Readers poll for the rest. (A trigger on `changes` did the same as NOTE at a multiple of
# its cost; docs/performance-notes.md, "Numbers behind choices in the code".)
NOTE = ", note AS MATERIALIZED (SELECT pg_notify({channel}, '') AS sent)"
NOTE_JOIN = ", note"

# A kind registered with durability="async": its write transaction commits without
# waiting for the WAL flush. Set inside the statement (no round trip of its own), local
# to the transaction; a CTE that is no data-modifying statement runs only when read, so
# the change row's insert joins it as it joins NOTE.
LAZY = ", lazy AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS was)"
LAZY_JOIN = ", lazy"
# After such a write inside the caller's store.transaction() block: the block commits
# durably, as its other writes may need.
DURABLE_AGAIN = "SET LOCAL synchronous_commit TO DEFAULT"

_CHANGE_ROW = """{note}
, chg AS (
    INSERT INTO {s}.changes (kind, name, version, op, written_at)
    SELECT %(kind)s, %(name)s, version, %(op)s, updated_at FROM head{note_join}
)
"""

# --- snapshot kinds ------------------------------------------------------------------

# A head's columns, in the order of docstore._rows.Head (the plans name the rows by it).
# data is read as text (``data::text``): psycopg hands text over as str, which Pydantic's
# validate_json takes as it is, so no connection needs a custom jsonb loader.
_HEAD_COLS = HEAD_COLUMNS

_VERSION_ROW = (
    """
, ins AS (
    INSERT INTO {s}.versions (kind, name, version, schema_version, op, data, author, written_at)
    SELECT %(kind)s, %(name)s, version, schema_version, %(op)s, data, %(author)s, updated_at
    FROM head
){key}"""
    + _CHANGE_ROW
    + """SELECT version, created_at, updated_at, true AS wrote FROM head
"""
)

# A put's {same}: when the upsert wrote nothing, the head as it is if it already holds
# this value, so that an unchanged put (configs synced at start) is one statement. Read
# from the statement's snapshot, the head the upsert compared with or an older one: a
# head moved on since is found by the plan's own look (docstore._snapshots).
PUT_SAME = """UNION ALL
SELECT d.version, d.created_at, d.updated_at, false FROM {s}.documents d
WHERE d.kind = %(kind)s AND d.name = %(name)s AND NOT EXISTS (SELECT FROM head)
  AND d.mode = 's' AND NOT d.deleted AND d.schema_version = %(sv)s AND d.data = %(data)s
"""
PUT_SAME_AT = " AND d.version = %(expected)s"

# expected_version None (any) or 0 (must not exist, or be deleted).
PUT_UPSERT = (
    """
WITH head AS (
    INSERT INTO {s}.documents AS d (kind, name, mode, version, schema_version, data)
    VALUES (%(kind)s, %(name)s, 's', 1, %(sv)s, %(data)s)
    ON CONFLICT (kind, name) DO UPDATE
    SET version = d.version + 1, schema_version = excluded.schema_version,
        data = excluded.data, deleted = false, updated_at = now(),
        created_at = CASE WHEN d.deleted THEN now() ELSE d.created_at END
    WHERE d.mode = 's' {expect}
      AND (d.deleted OR d.data <> excluded.data OR d.schema_version <> excluded.schema_version)
    RETURNING d.version, d.schema_version, d.data, d.created_at, d.updated_at
)"""
    + _VERSION_ROW
    + "{same}"
)

# expected_version N > 0: the document must exist at version N.
PUT_UPDATE = (
    """
WITH head AS (
    UPDATE {s}.documents AS d
    SET version = d.version + 1, schema_version = %(sv)s, data = %(data)s, deleted = false,
        updated_at = now(), created_at = CASE WHEN d.deleted THEN now() ELSE d.created_at END
    WHERE d.kind = %(kind)s AND d.name = %(name)s AND d.mode = 's'
      AND d.version = %(expected)s
      AND (d.deleted OR d.data <> %(data)s OR d.schema_version <> %(sv)s)
    RETURNING d.version, d.schema_version, d.data, d.created_at, d.updated_at
)"""
    + _VERSION_ROW
    + "{same}"
)

DELETE_SNAPSHOT = (
    """
WITH head AS (
    UPDATE {s}.documents AS d
    SET version = d.version + 1, deleted = true, updated_at = now()
    WHERE d.kind = %(kind)s AND d.name = %(name)s AND d.mode = 's' AND NOT d.deleted
      AND (%(expected)s::bigint IS NULL OR d.version = %(expected)s::bigint)
    RETURNING d.version, d.schema_version, d.data, d.created_at, d.updated_at
)"""
    + _VERSION_ROW
)

PUT_MANY = """
WITH input AS (
    SELECT t.name, t.data
    FROM unnest(%(names)s::text[], %(datas)b::jsonb[]) AS t(name, data)
    -- One lock order for every batch, so overlapping batches cannot deadlock: the
    -- code point order the client sorted the chunks in (docstore._snapshots.put_many).
    ORDER BY t.name COLLATE "C"
), head AS (
    INSERT INTO {s}.documents AS d (kind, name, mode, version, schema_version, data)
    SELECT %(kind)s, input.name, 's', 1, %(sv)s, input.data FROM input
    ON CONFLICT (kind, name) DO UPDATE
    SET version = d.version + 1, schema_version = excluded.schema_version,
        data = excluded.data, deleted = false, updated_at = now(),
        created_at = CASE WHEN d.deleted THEN now() ELSE d.created_at END
    WHERE d.mode = 's'
      AND (d.deleted OR d.data <> excluded.data OR d.schema_version <> excluded.schema_version)
    RETURNING d.name, d.version, d.schema_version, d.data, d.created_at, d.updated_at
), ins AS (
    INSERT INTO {s}.versions (kind, name, version, schema_version, op, data, author, written_at)
    SELECT %(kind)s, name, version, schema_version, 'put', data, %(author)s, updated_at
    FROM head
){note}
, chg AS (
    INSERT INTO {s}.changes (kind, name, version, op, written_at)
    SELECT %(kind)s, name, version, 'put', updated_at FROM head{note_join}
)
SELECT name, version, created_at, updated_at FROM head
"""

GET_HEAD = f"SELECT {_HEAD_COLS} FROM {{s}}.documents WHERE kind = %(kind)s AND name = %(name)s"

GET_HEADS = f"""
SELECT name, {_HEAD_COLS} FROM {{s}}.documents
WHERE kind = %(kind)s AND name = ANY(%(names)s) AND NOT deleted
"""

GET_VERSION = """
SELECT v.version, v.schema_version, v.data::text, d.created_at, v.written_at, v.op = 'delete',
       d.mode
FROM {s}.versions v JOIN {s}.documents d ON d.kind = v.kind AND d.name = v.name
WHERE v.kind = %(kind)s AND v.name = %(name)s AND v.version = %(version)s
  AND d.kind = %(kind)s AND d.name = %(name)s
"""

LIST_VERSIONS = """
SELECT v.version, v.schema_version, v.data::text, d.created_at, v.written_at, v.op = 'delete'
FROM {s}.versions v JOIN {s}.documents d ON d.kind = v.kind AND d.name = v.name
WHERE v.kind = %(kind)s AND v.name = %(name)s AND d.kind = %(kind)s AND d.name = %(name)s
ORDER BY v.version
"""

# {where} is a compiled filter, {after} a keyset condition and {order} an ORDER BY list,
# all from docstore._filters: fixed SQL text whose values are all parameters.
# {kind} is the kind as a literal, not a parameter: a partial index of one kind
# (create_index) serves a statement only when the planner sees its predicate's value,
# which a generic plan of a prepared statement with a parameter never does.
LIST_HEADS = f"""
SELECT name, {_HEAD_COLS} FROM {{s}}.documents
WHERE kind = {{kind}} AND NOT deleted {{after}} {{where}}
ORDER BY {{order}}
LIMIT %(limit)s
"""

COUNT_HEADS = """
SELECT count(*) FROM {s}.documents WHERE kind = %(kind)s AND NOT deleted {where}
"""

# iter in an order no index holds: the names once, in order, then pages by name.
ITER_NAMES = """
SELECT name FROM {s}.documents
WHERE kind = %(kind)s AND NOT deleted {where}
ORDER BY {order}
"""

ITER_PAGE = f"""
SELECT p.name, d.* FROM unnest(%(names)s::text[]) WITH ORDINALITY AS p(name, ord)
CROSS JOIN LATERAL (
    SELECT {_HEAD_COLS} FROM {{s}}.documents
    WHERE kind = %(kind)s AND name = p.name AND NOT deleted {{where}}
    LIMIT 1
) d
ORDER BY p.ord
"""

STALE_NAMES = """
SELECT name FROM {s}.documents
WHERE kind = %(kind)s AND NOT deleted AND schema_version < %(sv)s AND name > %(after)s
ORDER BY name LIMIT %(limit)s
"""

# --- log kinds -----------------------------------------------------------------------

_ITEM_ROWS = (
    """
, ins AS (
    INSERT INTO {s}.versions (kind, name, version, schema_version, op, data, author, written_at)
    SELECT %(kind)s, %(name)s, head.version - %(n)s + i.ord, %(sv)s, %(op)s, i.data,
           %(author)s, head.updated_at
    FROM head, {items} WITH ORDINALITY AS i(data, ord)
){key}"""
    + _CHANGE_ROW
    # Only the version: an append returns nothing else, and each timestamp column costs
    # psycopg a parse.
    + """SELECT version FROM head
"""
)

# {live} is what live_from becomes: kept by an append, moved past the old items by a
# rewrite. A deleted log starts afresh either way.
APPEND_UPSERT = (
    """
WITH head AS (
    INSERT INTO {s}.documents AS d (kind, name, mode, version, live_from, schema_version, data)
    VALUES (%(kind)s, %(name)s, 'l', %(n)s, 1, 1, coalesce(%(meta)s::jsonb, %(meta_default)s::jsonb))
    ON CONFLICT (kind, name) DO UPDATE
    SET version = d.version + %(n)s, data = {data}, deleted = false,
        updated_at = now(),
        live_from = CASE WHEN d.deleted THEN d.version + 1 ELSE {live} END,
        created_at = CASE WHEN d.deleted THEN now() ELSE d.created_at END
    WHERE d.mode = 'l' {expect}
    RETURNING d.version, d.live_from, d.created_at, d.updated_at
)"""
    + _ITEM_ROWS
)

# Only moves an existing head: for an exact expected version, and for appends that
# bring no metadata to a kind whose metadata has required fields.
APPEND_UPDATE = (
    """
WITH head AS (
    UPDATE {s}.documents AS d
    SET version = d.version + %(n)s, data = {data}, deleted = false,
        updated_at = now(),
        live_from = CASE WHEN d.deleted THEN d.version + 1 ELSE {live} END,
        created_at = CASE WHEN d.deleted THEN now() ELSE d.created_at END
    WHERE d.kind = %(kind)s AND d.name = %(name)s AND d.mode = 'l' {expect}
    RETURNING d.version, d.live_from, d.created_at, d.updated_at
)"""
    + _ITEM_ROWS
)

# How an append's items reach the server: one JSON array (psycopg builds a jsonb[]
# parameter in Python, element by element, and the server parses it slower too), or,
# past ITEMS_ARRAY_OVER bytes, a jsonb[]: one jsonb value holds at most 256 MiB, where
# an array caps each element only (8 MiB of JSON can be ~60 MiB of jsonb: tiny numbers).
ITEMS_JSON = "jsonb_array_elements(%(items)s::jsonb)"
ITEMS_ARRAY = "unnest(%(items)b::jsonb[])"
ITEMS_ARRAY_OVER = 8 * 1024 * 1024

# What the head's metadata becomes: replaced by meta= when given, or (meta_update=)
# only the given keys set, the others kept.
META_REPLACE = "coalesce(%(meta)s::jsonb, d.data)"
META_UPDATE = "d.data || %(meta_update)s::jsonb"

# A meta_update whose merge needs checking: the metadata it merges into, locked until
# the write commits.
LOCK_META = """
SELECT data::text FROM {s}.documents
WHERE kind = %(kind)s AND name = %(name)s AND mode = 'l' AND NOT deleted
FOR UPDATE
"""

LIVE_KEEP = "d.live_from"
# A log's live items: none once deleted (its live_from stays, for restore()).
LIVE_COUNT = "(CASE WHEN d.deleted THEN 0 ELSE d.version - d.live_from + 1 END)"
LIVE_RESET = "d.version + 1"

# A clear or a log's delete writes no version row, but it is a write: it has its change.
CLEAR_LOG = (
    """
WITH head AS (
    UPDATE {s}.documents AS d SET live_from = d.version + 1, updated_at = now()
    WHERE d.kind = %(kind)s AND d.name = %(name)s AND d.mode = 'l' AND NOT d.deleted
      AND (%(expected)s::bigint IS NULL OR d.version = %(expected)s::bigint)
    RETURNING d.version, d.updated_at
)"""
    + _CHANGE_ROW
    + """SELECT version FROM head
"""
)

DELETE_LOG = (
    """
WITH head AS (
    -- live_from stays: the items live at the delete are what restore() brings back (an
    -- append after the delete starts afresh at version + 1 all the same).
    UPDATE {s}.documents AS d SET deleted = true, updated_at = now()
    WHERE d.kind = %(kind)s AND d.name = %(name)s AND d.mode = 'l' AND NOT d.deleted
      AND (%(expected)s::bigint IS NULL OR d.version = %(expected)s::bigint)
    RETURNING d.version, d.updated_at, d.created_at
){key}"""
    + _CHANGE_ROW
    + """SELECT version FROM head
"""
)

# A deleted log live again, with the items it had when it was deleted; no version row
# (version N is still the N-th item), a change row with op 'restore'.
RESTORE_LOG = (
    """
WITH head AS (
    UPDATE {s}.documents AS d SET deleted = false, updated_at = now()
    WHERE d.kind = %(kind)s AND d.name = %(name)s AND d.mode = 'l' AND d.deleted
      AND (%(expected)s::bigint IS NULL OR d.version = %(expected)s::bigint)
    RETURNING d.version, d.updated_at, d.created_at
)"""
    + _CHANGE_ROW
    + """SELECT version FROM head
"""
)

# Newest first with a LIMIT, so last=N reads N index entries whatever the length.
# {written} is ", v.written_at" for read(written_at=True), else "" (client CPU a row to
# parse a timestamptz most reads would throw away).
READ_LAST = """
SELECT v.version, v.schema_version{written}, v.data::text
FROM {s}.documents d
JOIN {s}.versions v ON v.kind = d.kind AND v.name = d.name
WHERE d.kind = %(kind)s AND d.name = %(name)s AND NOT d.deleted AND d.mode = 'l'
  AND v.kind = %(kind)s AND v.name = %(name)s
  AND v.version >= d.live_from AND v.version > %(after)s {where}
ORDER BY v.version DESC
LIMIT %(limit)s
"""

READ_FIRST = """
SELECT v.version, v.schema_version{written}, v.data::text
FROM {s}.documents d
JOIN {s}.versions v ON v.kind = d.kind AND v.name = d.name
WHERE d.kind = %(kind)s AND d.name = %(name)s AND NOT d.deleted AND d.mode = 'l'
  AND v.kind = %(kind)s AND v.name = %(name)s
  AND v.version >= d.live_from AND v.version > %(after)s {where}
ORDER BY v.version
LIMIT %(limit)s
"""

# --- idempotency keys ----------------------------------------------------------------

# A write given an idempotency_key records it in the same statement, as one row of the
# reserved kind `_idempotency` in `versions` (no table of their own, and the primary
# key makes a key unique): name = the key, version = 1, data = what the write was and
# what it returned. A write without a key has "" in the {key} slot and pays nothing.
IDEMPOTENCY_KIND = "_idempotency"

KEY_ROW = """
, idem AS (
    INSERT INTO {s}.versions (kind, name, version, op, data, author, written_at)
    SELECT '_idempotency', %(idem_key)s, 1, %(op)s,
           jsonb_build_object('kind', %(kind)s::text, 'name', %(name)s::text,
                              'version', version, 'request', %(idem_request)s::text,
                              'created_at', created_at),
           %(author)s, now()
    FROM head
)"""

# A keyed put of the value already stored writes nothing, but its key must still hold
# what it returned: a retry after a later write by someone else must not write again.
KEY_RECORD = """
INSERT INTO {s}.versions (kind, name, version, op, data, author, written_at)
VALUES ('_idempotency', %(idem_key)s, 1, %(op)s,
        jsonb_build_object('kind', %(kind)s::text, 'name', %(name)s::text,
                           'version', %(version)s::bigint, 'request', %(idem_request)s::text,
                           'created_at', %(created)s::timestamptz,
                           'updated_at', %(updated)s::timestamptz),
        %(author)s, now())
ON CONFLICT DO NOTHING
RETURNING 1
"""

KEY_LOOKUP = """
SELECT op, data ->> 'kind', data ->> 'name', (data ->> 'version')::bigint,
       data ->> 'request', (data ->> 'created_at')::timestamptz,
       coalesce((data ->> 'updated_at')::timestamptz, written_at),
       -- KEY_RECORD (a keyed write that wrote nothing) is the one that records updated_at
       NOT data ? 'updated_at'
FROM {s}.versions
WHERE kind = '_idempotency' AND name = %(idem_key)s AND version = 1
"""

# Keys older than the cutoff, for prune(kind, older_than=...): the kind's own keys only,
# through versions_key_age_idx (schema.sql).
PRUNE_KEYS = """
WITH doomed AS (
    SELECT kind, name, version FROM {s}.versions
    WHERE kind = '_idempotency' AND data ->> 'kind' = %(kind)s
      AND written_at < %(cutoff)s::timestamptz
    LIMIT %(batch)s
)
DELETE FROM {s}.versions v USING doomed
WHERE v.kind = doomed.kind AND v.name = doomed.name AND v.version = doomed.version
RETURNING 1
"""

# --- retention -----------------------------------------------------------------------

# Whole documents, a batch at a time so no statement holds many locks for long.
# {cond} filters by age; keep_last protects the newest documents of the kind.
PRUNE_DOCUMENTS = (
    """
WITH ranked AS (
    SELECT kind, name, updated_at,
           row_number() OVER (ORDER BY updated_at DESC, name) AS rank
    FROM {s}.documents WHERE kind = %(kind)s
), doomed AS (
    -- The conditions are on d, the locked row, not only on the snapshot's ranking: a
    -- head written after this statement began is re-checked once locked, and kept.
    SELECT d.kind, d.name FROM {s}.documents d JOIN ranked r USING (kind, name)
    WHERE r.rank > %(keep_last)s
      AND d.updated_at = r.updated_at
      AND (%(cutoff)s::timestamptz IS NULL OR d.updated_at < %(cutoff)s::timestamptz)
    ORDER BY d.name
    LIMIT %(batch)s
    FOR UPDATE OF d SKIP LOCKED
), gone_versions AS (
    -- By key, as an array: a join with doomed lets the planner pick a hash join that
    -- reads every partition of a partitioned versions table (docs/performance.md).
    DELETE FROM {s}.versions v
    WHERE v.kind = %(kind)s AND v.name = ANY(ARRAY(SELECT name FROM doomed))
), gone AS (
    DELETE FROM {s}.documents d USING doomed
    WHERE d.kind = doomed.kind AND d.name = doomed.name
    RETURNING d.kind, d.name, d.version
)"""
    + NOTE
    + """, chg AS (
    -- A pruned document is gone for every reader: that is a change too.
    INSERT INTO {s}.changes (kind, name, version, op)
    SELECT kind, name, version, 'prune' FROM gone, note
)
SELECT name FROM gone
"""
)

# prune(restorable=True) of a log kind: the same choice as PRUNE_DOCUMENTS among the live
# logs (keep_last counts live ones, newest by updated_at then name, both descending as
# list(order_by="-updated_at")), deleted as delete() does (a tombstone restore() undoes)
# instead of removed. Keyset, not a ranking of every live log: the newest keep_last are
# skipped to find the boundary, and the doomed are read from there, so a partial index on
# (updated_at, name) of the kind's live heads (a layer may make one for its
# logs) reads only the rows it hides. {kind} is a literal for that index's
# predicate (see LIST_HEADS). Each head is re-checked once locked (the conditions are on
# the locked row), so a log written after the statement began is kept.
HIDE_LOGS = (
    """
WITH doomed AS (
    SELECT d.kind, d.name FROM {s}.documents d
    WHERE d.kind = {kind} AND NOT d.deleted AND d.mode = 'l'
      AND (%(cutoff)s::timestamptz IS NULL OR d.updated_at < %(cutoff)s::timestamptz)
      AND (%(keep_last)s::int = 0 OR (d.updated_at, d.name) < (
          SELECT k.updated_at, k.name FROM {s}.documents k
          WHERE k.kind = {kind} AND NOT k.deleted
          ORDER BY k.updated_at DESC, k.name DESC
          OFFSET greatest(%(keep_last)s::int - 1, 0) LIMIT 1))
    ORDER BY d.updated_at DESC, d.name DESC
    LIMIT %(batch)s
    FOR UPDATE OF d SKIP LOCKED
), hid AS (
    UPDATE {s}.documents d SET deleted = true, updated_at = now()
    FROM doomed WHERE d.kind = doomed.kind AND d.name = doomed.name
    RETURNING d.kind, d.name, d.version, d.updated_at
)"""
    + NOTE
    + """, chg AS (
    INSERT INTO {s}.changes (kind, name, version, op, written_at)
    SELECT kind, name, version, 'delete', updated_at FROM hid, note
)
SELECT name FROM hid
"""
)

# Named documents with every version they have, for good; returns each with whether it
# was deleted already. The feed reports each as a purge: gone, history and all. The
# idempotency keys of their writes go too (every name given, even one with no document
# left): a keyed retry would otherwise answer "written" for a document that is not
# there, and a reused key would show the purged name.
PURGE_DOCUMENTS = (
    """
WITH doomed AS (
    SELECT d.kind, d.name, d.deleted FROM {s}.documents d
    WHERE d.kind = %(kind)s AND d.name = ANY(%(names)s)
    ORDER BY d.name
    FOR UPDATE OF d
), gone_versions AS (
    DELETE FROM {s}.versions v USING doomed
    WHERE v.kind = doomed.kind AND v.name = doomed.name
), gone_keys AS (
    -- The predicate and expressions of versions_key_document_idx (schema.sql).
    DELETE FROM {s}.versions v
    WHERE v.kind = '_idempotency' AND v.data ->> 'kind' = %(kind)s
      AND v.data ->> 'name' = ANY(%(names)s)
), gone AS (
    DELETE FROM {s}.documents d USING doomed
    WHERE d.kind = doomed.kind AND d.name = doomed.name
    RETURNING d.kind, d.name, d.version, doomed.deleted
)"""
    + NOTE
    + """, chg AS (
    INSERT INTO {s}.changes (kind, name, version, op)
    SELECT kind, name, version, 'purge' FROM gone, note
)
SELECT name, deleted FROM gone
"""
)

# Old versions beyond the newest keep_last; a log's live items and a snapshot's current
# version always stay.
# By primary key, not ctid: a ctid is unique only within one partition of a partitioned
# versions table (docs/scaling.md).
PRUNE_VERSIONS = """
WITH doomed AS (
    SELECT v.kind, v.name, v.version FROM {s}.versions v
    JOIN {s}.documents d ON d.kind = v.kind AND d.name = v.name
    WHERE v.kind = %(kind)s
      AND v.version <= d.version - %(keep_last)s
      AND (d.mode = 's' OR v.version < d.live_from)
    LIMIT %(batch)s
)
DELETE FROM {s}.versions v USING doomed
WHERE v.kind = doomed.kind AND v.name = doomed.name AND v.version = doomed.version
RETURNING 1
"""

# --- the change feed -----------------------------------------------------------------

# The frontier of a snapshot: the oldest transaction still running that may yet write
# a change here, else the snapshot's xmax. Every row below it is final. A transaction
# running in another database of the cluster cannot write this table, so it does not
# hold the feed back (it would, were this plain xmin); one that ended since the snapshot
# is not in pg_stat_activity and counts as running, to be safe.
_FRONTIER = """coalesce((
    SELECT min(x) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
    WHERE NOT EXISTS (
        SELECT 1 FROM pg_stat_activity a
        WHERE a.backend_xid = xid(x)
          AND a.datid IS DISTINCT FROM (SELECT oid FROM pg_database
                                        WHERE datname = current_database()))
), pg_snapshot_xmax(pg_current_snapshot()))"""

# Where a feed that starts now begins: the frontier (every transaction of this database
# below it has ended; the snapshot tells which of the others had committed: those are
# "before", not delivered), and the horizon prune_changes recorded. The same frontier as
# prune_changes's: the snapshot's own xmin counts transactions of other databases too,
# and a feed started there while prune_changes had gone past it was told it fell behind.
FEED_START = (
    """
SELECT ("""
    + _FRONTIER
    + """)::text, pg_current_snapshot()::text,
       (SELECT data ->> 'pruned_through' FROM {s}.documents
        WHERE kind = '_docstore' AND name = 'changes')
"""
)

# The next page after (xid, seq), in (xid, seq) order, with the frontier: rows at or
# above it are not delivered yet (a transaction below them may still commit), the
# snapshot's xmax (no cursor this server gave is past it: one that is comes from
# another cluster), and the retention horizon prune_changes left, checked in the same
# snapshot. {skip} leaves out what a feed started with after=None saw as already
# committed.
FEED_PAGE = (
    """
WITH snap AS (SELECT """
    + _FRONTIER
    + """ AS xmin)
SELECT snap.xmin::text, pg_snapshot_xmax(pg_current_snapshot())::text,
       (SELECT data ->> 'pruned_through' FROM {s}.documents
        WHERE kind = '_docstore' AND name = 'changes'),
       c.xid::text, c.seq, c.kind, c.name, c.version, c.op, c.written_at
FROM snap LEFT JOIN LATERAL (
    SELECT * FROM {s}.changes c
    WHERE (c.xid, c.seq) > (%(xid)s::xid8, %(seq)s::bigint)
      AND (%(kinds)s::text[] IS NULL OR c.kind = ANY(%(kinds)s::text[])) {skip}
    ORDER BY c.xid, c.seq
    LIMIT %(limit)s
) c ON true
ORDER BY c.xid, c.seq
"""
)

FEED_SKIP = "AND NOT pg_visible_in_snapshot(c.xid, %(since)s::pg_snapshot)"

# Retention: the oldest changes up to the last one written before the cutoff (and
# final), a batch per statement (a long delete would hold an xid, and with it every
# feed), with the horizon recorded in the same statement, so that a reader whose cursor
# is older learns it fell behind (ChangesPruned) instead of silently skipping.
PRUNE_CHANGES = (
    """
WITH bound AS (
    SELECT xid, seq FROM {s}.changes
    WHERE written_at < %(cutoff)s AND xid < """
    + _FRONTIER
    + """
    ORDER BY xid DESC, seq DESC
    LIMIT 1
), doomed AS (
    SELECT c.xid, c.seq FROM {s}.changes c, bound
    WHERE (c.xid, c.seq) <= (bound.xid, bound.seq)
    ORDER BY c.xid, c.seq
    LIMIT %(batch)s
), last AS (
    SELECT xid, seq FROM doomed ORDER BY xid DESC, seq DESC LIMIT 1
), gone AS (
    DELETE FROM {s}.changes c USING doomed WHERE c.xid = doomed.xid AND c.seq = doomed.seq
    RETURNING 1
), mark AS (
    INSERT INTO {s}.documents AS d (kind, name, mode, version, data)
    SELECT '_docstore', 'changes', 's', 1,
           jsonb_build_object('pruned_through', last.xid::text || '.' || last.seq)
    FROM last
    ON CONFLICT (kind, name) DO UPDATE
    SET data = excluded.data, version = d.version + 1, updated_at = now()
    -- Only forward: a run that read an older snapshot may commit after one that went
    -- further (it waited for its rows); moving the horizon back would hide that gap.
    -- ON CONFLICT compares with the latest committed horizon, not this snapshot's.
    WHERE d.data ->> 'pruned_through' IS NULL
       OR (split_part(excluded.data ->> 'pruned_through', '.', 1)::xid8,
           split_part(excluded.data ->> 'pruned_through', '.', 2)::bigint)
        > (split_part(d.data ->> 'pruned_through', '.', 1)::xid8,
           split_part(d.data ->> 'pruned_through', '.', 2)::bigint)
)
SELECT count(*) FROM gone
"""
)

# --- schema --------------------------------------------------------------------------

# Opt-in indexes of one kind's heads ({kind} a literal, {name} an identifier; see
# schema.sql for why none is there by default). Partial, so other kinds' writes never
# add entries to them.
INDEX_DATA = """
CREATE INDEX IF NOT EXISTS {name} ON {s}.documents USING gin (data jsonb_path_ops)
WHERE kind = {kind}
"""

INDEX_UPDATED = """
CREATE INDEX IF NOT EXISTS {name} ON {s}.documents (updated_at, name)
WHERE kind = {kind}
"""

SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))"

# The layout of an existing versions table: relkind ('r' plain, 'p' partitioned) and how
# many partitions it has; no row when there is no such table yet.
VERSIONS_LAYOUT = """
SELECT c.relkind::text, (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = 'versions'
"""

MAX_PARTITIONS = 1024

# The DDL version a store records (schema.sql's last statement writes it).
RECORDED_DDL_VERSION = """
SELECT (data ->> 'ddl_version')::int FROM {s}.documents
WHERE kind = '_docstore' AND name = 'schema'
"""

# --- export and import ---------------------------------------------------------------

# Export lines are built by the server as jsonb text: keys in jsonb's fixed order, data
# exactly as stored, times in UTC with microseconds, so the same rows always give the
# same bytes. Order is by kind and name in the "C" collation (the same in every
# database), each document's head line before its versions. Reserved kinds (`_...`)
# are the store's own and are recreated by init_schema.
_UTC = """to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

# One cursor over the keys, sorted once: each page FETCHes the next keys, so an export
# reads every row a bounded number of times (keyset pages in the "C" collation cannot
# use the primary key, whose order is the database's collation, and each page would sort
# every remaining row). Only keys are sorted: the rows are read by key, page by page.
EXPORT_CURSOR = "docstore_export"

EXPORT_KEYS = """
DECLARE docstore_export NO SCROLL CURSOR FOR
SELECT kind, name FROM {s}.documents
WHERE left(kind, 1) <> '_'
  AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
ORDER BY kind COLLATE "C", name COLLATE "C"
"""

# {count} is an int docstore formats (FETCH takes no parameter).
EXPORT_FETCH = "FETCH FORWARD {count} FROM docstore_export"

EXPORT_HEADS = f"""
SELECT d.kind, d.name, jsonb_build_object(
    't', 'document', 'kind', d.kind, 'name', d.name,
    'mode', CASE d.mode WHEN 'l' THEN 'log' ELSE 'snapshot' END,
    'version', d.version, 'live_from', d.live_from, 'schema_version', d.schema_version,
    'deleted', d.deleted, 'created_at', {_UTC.format(col="d.created_at")},
    'updated_at', {_UTC.format(col="d.updated_at")}, 'data', d.data)::text
FROM unnest(%(kinds)s::text[], %(names)s::text[]) WITH ORDINALITY AS p(kind, name, ord)
-- A primary-key probe per key, whatever the table's size (a join may scan it all).
CROSS JOIN LATERAL (
    SELECT * FROM {{s}}.documents d WHERE d.kind = p.kind AND d.name = p.name LIMIT 1
) d
ORDER BY p.ord
"""

EXPORT_VERSIONS = f"""
SELECT v.kind, v.name, jsonb_build_object(
    't', 'version', 'kind', v.kind, 'name', v.name, 'version', v.version,
    'schema_version', v.schema_version, 'op', v.op, 'author', v.author,
    'written_at', {_UTC.format(col="v.written_at")}, 'data', v.data)::text
FROM {{s}}.versions v
JOIN unnest(%(kinds)s::text[], %(names)s::text[]) AS p(kind, name)
  ON v.kind = p.kind AND v.name = p.name
ORDER BY v.kind COLLATE "C", v.name COLLATE "C", v.version
"""

# Import: the lines travel as text and are parsed by the server, so numbers keep their
# exact jsonb value (no float round trip in Python).
_IMPORT_INPUT = """
WITH input AS (
    SELECT t.l::jsonb AS l FROM unnest(%(lines)s::text[]) AS t(l)
), docs AS (
    SELECT l ->> 'kind' AS kind, l ->> 'name' AS name,
           (CASE l ->> 'mode' WHEN 'log' THEN 'l' ELSE 's' END)::"char" AS mode,
           (l ->> 'version')::bigint AS version, (l ->> 'live_from')::bigint AS live_from,
           (l ->> 'schema_version')::int AS schema_version, (l ->> 'deleted')::boolean AS deleted,
           (l ->> 'created_at')::timestamptz AS created_at,
           (l ->> 'updated_at')::timestamptz AS updated_at, l -> 'data' AS data
    FROM input WHERE l ->> 't' = 'document'
), vers AS (
    SELECT l ->> 'kind' AS kind, l ->> 'name' AS name, (l ->> 'version')::bigint AS version,
           (l ->> 'schema_version')::int AS schema_version, l ->> 'op' AS op,
           l ->> 'author' AS author, (l ->> 'written_at')::timestamptz AS written_at,
           l -> 'data' AS data
    FROM input WHERE l ->> 't' = 'version'
)"""

# Rows the batch holds that the store already holds differently (first few).
IMPORT_CONFLICTS = (
    _IMPORT_INPUT
    + """
SELECT 'document', i.kind, i.name, i.version FROM docs i
JOIN {s}.documents d ON d.kind = i.kind AND d.name = i.name
WHERE (d.mode, d.version, d.live_from, d.schema_version, d.deleted, d.created_at,
       d.updated_at, d.data)
      IS DISTINCT FROM (i.mode, i.version, i.live_from, i.schema_version, i.deleted,
                        i.created_at, i.updated_at, i.data)
UNION ALL
SELECT 'version', i.kind, i.name, i.version FROM vers i
JOIN {s}.versions v ON v.kind = i.kind AND v.name = i.name AND v.version = i.version
WHERE (v.schema_version, v.op, v.author, v.written_at, v.data)
      IS DISTINCT FROM (i.schema_version, i.op, i.author, i.written_at, i.data)
LIMIT 5
"""
)

# Rows already present (identical, checked above) are skipped: an import runs again safely.
IMPORT_WRITE = (
    _IMPORT_INPUT
    + """
, ins_docs AS (
    INSERT INTO {s}.documents (kind, name, mode, version, live_from, schema_version, data,
                               deleted, created_at, updated_at)
    SELECT kind, name, mode, version, live_from, schema_version, data, deleted, created_at,
           updated_at
    FROM docs
    ON CONFLICT (kind, name) DO NOTHING
    RETURNING kind, name, version
)"""
    + NOTE
    + """, chg AS (
    INSERT INTO {s}.changes (kind, name, version, op)
    SELECT kind, name, version, 'import' FROM ins_docs, note
), ins_vers AS (
    INSERT INTO {s}.versions (kind, name, version, schema_version, op, data, author, written_at)
    SELECT kind, name, version, schema_version, op, data, author, written_at FROM vers
    ON CONFLICT (kind, name, version) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins_docs), (SELECT count(*) FROM ins_vers)
"""
)


def channel(schema: str) -> str:
    """The NOTIFY channel of a schema's change feed (always a valid, short name)."""
    return "docstore_" + hashlib.md5(schema.encode()).hexdigest()


def schema_ddl() -> str:
    """The text of schema.sql: from the installed wheel, else from the source tree."""
    packaged = resources.files("docstore").joinpath("schema.sql")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "schema.sql").read_text(encoding="utf-8")


# schema.sql's statement recording its DDL version: the one place the number is written.
_DDL_VERSION_ROW = re.compile(r"""VALUES \('_docstore', 'schema', 's', 1, '\{"ddl_version": (\d+)\}'\)""")


@functools.cache
def release_ddl_version() -> int:
    """The DDL version this release's schema.sql records, read from the file itself."""
    found = _DDL_VERSION_ROW.findall(schema_ddl())
    if len(found) != 1:
        raise RuntimeError(f"schema.sql must record its DDL version once, found {len(found)} records")
    return int(found[0])


_PLACEHOLDERS = re.compile(re.escape(SCHEMA_PLACEHOLDER) + "|" + re.escape(SCHEMA_LITERAL_PLACEHOLDER))


def check_schema(schema: str) -> None:
    """Refuse, before any SQL runs, a schema name that could be more than a name.

    It is quoted as an identifier everywhere, but schema.sql's comments hold its
    placeholder (a line break in the name would end the comment) and psycopg reads ``%``
    in a statement as a parameter marker; PostgreSQL cuts names past 63 bytes.
    """
    if not isinstance(schema, str) or not schema:
        raise ValueError(f"a schema name must be a non-empty str, not {schema!r}")
    size = len(schema.encode("utf-8", "surrogatepass"))
    if size > 63:
        raise ValueError(
            f"schema name {schema[:80]!r} is {size} bytes in UTF-8; PostgreSQL "
            "keeps 63 at most (it would silently cut it to another name)"
        )
    bad = sorted({c for c in schema if c == "%" or not c.isprintable()})
    if bad:
        raise ValueError(
            f"schema name {schema!r} cannot hold {', '.join(map(repr, bad))}: "
            "no control or line-break characters, and no %"
        )
    try:
        schema.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"schema name {schema!r} is not valid UTF-8") from None


class Statements:
    """The statements bound to one schema."""

    def __init__(self, schema: str) -> None:
        check_schema(schema)
        self.schema = schema
        self.quoted = sql.Identifier(schema).as_string(None)
        self.channel = channel(schema)
        channel_literal = sql.Literal(self.channel).as_string(None)
        # The schema last: a brace in its name must not be taken for a placeholder.
        self._fixed = (("{channel}", channel_literal), ("{s}", self.quoted))
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def __call__(self, template: str, **parts: str) -> str:
        """The template bound to this schema, with trusted SQL fragments filled in."""
        key = (template, tuple(sorted(parts.items())) if parts else ())
        text = self._cache.get(key)
        if text is None:
            text = template
            for part, value in parts.items():
                text = text.replace("{" + part + "}", value)
            for optional in ("key", "same"):
                if optional not in parts:
                    text = text.replace("{" + optional + "}", "")
            for placeholder, value in self._fixed:
                text = text.replace(placeholder, value)
            if len(self._cache) < 512:
                self._cache[key] = text
        return text

    def partitioned_versions(self, partitions: int) -> str:
        """DDL creating ``versions`` hash-partitioned on (kind, name) into ``partitions``.

        The table's definition is schema.sql's own (so the two layouts cannot drift), with
        ``PARTITION BY HASH (kind, name)`` added: every statement that names one document
        touches one partition, and the primary key (kind, name, version) holds the
        partition key as PostgreSQL requires. schema.sql, run next, then finds the table.
        """
        ddl = self.ddl()
        start = ddl.index(f"CREATE TABLE IF NOT EXISTS {self.quoted}.versions (")
        end = ddl.index("\n);", start) + 2
        table = ddl[start:end] + " PARTITION BY HASH (kind, name)"
        parts = [f"CREATE SCHEMA IF NOT EXISTS {self.quoted}", table]
        for i in range(partitions):
            name = sql.Identifier(f"versions_p{i}").as_string(None)
            parts.append(
                f"CREATE TABLE IF NOT EXISTS {self.quoted}.{name} PARTITION OF "
                f"{self.quoted}.versions FOR VALUES WITH (MODULUS {partitions}, "
                f"REMAINDER {i})"
            )
        return ";\n".join(parts) + ";"

    def views_ddl(self) -> str:
        """schema.sql's views (everything after its ``docstore:views`` line), bound to
        this schema: an upgrade replaces them after its steps."""
        ddl = self.ddl()
        return ddl[ddl.index("\n", ddl.index(VIEWS_MARKER)) + 1 :]

    def ddl(self) -> str:
        """schema.sql bound to this schema."""
        literal = sql.Literal(self.schema).as_string(None)
        # One pass, so a placeholder spelled inside the name is never substituted again.
        values = {SCHEMA_PLACEHOLDER: self.quoted, SCHEMA_LITERAL_PLACEHOLDER: literal}
        return _PLACEHOLDERS.sub(lambda m: values[m.group(0)], schema_ddl())
