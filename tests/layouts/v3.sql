-- Frozen copy of schema.sql at DDL version 3 (tests/layouts/README.md): do not edit.
-- The layout this release creates; a change to schema.sql is DDL version 4.
-- docstore: all of its DDL, in one file.
--
-- Two tables keyed by (kind, name): `documents` holds each document's head (its current
-- state) and `versions` holds every versioned record ever written, append-only.
--
-- :"schema" is the target schema's name, written the way psql spells a quoted variable,
-- so this file runs as it is:
--     psql -v schema=docstore -f schema.sql
-- DocStore.init_schema() substitutes the same placeholder with a quoted identifier and
-- runs the file under an advisory lock to create a store. Every statement is idempotent
-- and nothing here ever drops or rewrites data, so re-running it is always safe.
--
-- The layout is versioned: the DDL version recorded at the end of this file is the one
-- place the number is written, and every change to this file bumps it. A store made at
-- an earlier version is upgraded in place, online, by the steps of docstore/_ddl.py
-- (`docstore migrate`, or init_schema(); docs/upgrading.md). Running this file on such a
-- store upgrades it too, but builds the missing indexes under a lock that stops writes.

CREATE SCHEMA IF NOT EXISTS :"schema";

CREATE TABLE IF NOT EXISTS :"schema".documents (
    kind           text        NOT NULL,
    name           text        NOT NULL,
    -- 's': snapshot kind (configs), each version is a whole value.
    -- 'l': log kind (conversations), version N is the N-th item ever appended.
    mode           "char"      NOT NULL DEFAULT 's',
    version        bigint      NOT NULL,
    -- Log kinds: the first version still live; a rewrite or clear moves it forward
    -- instead of touching old rows. Always 1 for snapshot kinds.
    live_from      bigint      NOT NULL DEFAULT 1,
    schema_version integer     NOT NULL DEFAULT 1,
    -- Snapshot kinds: the current value. Log kinds: the log's metadata.
    data           jsonb       NOT NULL,
    deleted        boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_pkey PRIMARY KEY (kind, name),
    CONSTRAINT documents_kind_check CHECK (kind ~ '^_?[a-z][a-z0-9_]{0,62}$'),
    -- Bounded so a key always fits a btree index entry (512 chars * 4 bytes < 2704).
    CONSTRAINT documents_name_check CHECK (char_length(name) BETWEEN 1 AND 512),
    CONSTRAINT documents_mode_check CHECK (mode IN ('s', 'l')),
    CONSTRAINT documents_version_check CHECK (version >= 0 AND live_from >= 1)
);

-- No foreign key to documents: every write changes both tables in one statement, and
-- a per-row RI trigger would make each appended message pay for a check the write
-- path already guarantees.
CREATE TABLE IF NOT EXISTS :"schema".versions (
    kind           text        NOT NULL,
    name           text        NOT NULL,
    version        bigint      NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1,
    -- put | revert | delete (a tombstone holding the deleted value) | append | rewrite
    op             text        NOT NULL,
    data           jsonb       NOT NULL,
    author         text,
    written_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT versions_pkey PRIMARY KEY (kind, name, version),
    CONSTRAINT versions_version_check CHECK (version >= 1),
    CONSTRAINT versions_op_check CHECK (op IN ('put', 'revert', 'delete', 'append', 'rewrite'))
);

-- Idempotency keys (rows of the reserved kind `_idempotency`, docstore/_sql.py) by the
-- document they wrote and by age: purge removes a document's keys with it, and
-- prune(older_than=) a kind's old keys, each through an index instead of a scan of every
-- version of every kind (200,000 keys beside 200,000 versions: purge 0.1 ms instead of
-- 55 ms, a prune batch 2.4 ms instead of 44 ms; the scan grows with the whole table).
-- Partial: only keyed writes add entries (no cost measurable on a keyed put). New in DDL
-- version 2; the upgrade builds them CONCURRENTLY (writes go on).
CREATE INDEX IF NOT EXISTS versions_key_document_idx ON :"schema".versions
    ((data ->> 'kind'), (data ->> 'name')) WHERE kind = '_idempotency';
CREATE INDEX IF NOT EXISTS versions_key_age_idx ON :"schema".versions
    ((data ->> 'kind'), written_at) WHERE kind = '_idempotency';

-- lz4 where the server was built with it: it compresses and decompresses large values
-- several times faster than the default pglz (a 10,000-config put_many spends a fifth
-- less time in the server). Set only when not set yet: the ALTER takes a brief lock.
-- (:'schema' is the schema's name as a string literal, psql's spelling again.)
SET docstore.ddl_schema = :'schema';
DO $$
DECLARE
    target text := current_setting('docstore.ddl_schema');
    rel regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_settings
                   WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        RETURN;
    END IF;
    -- The partitions of a partitioned versions table too: the setting does not recurse.
    FOR rel IN SELECT format('%I.%I', target, t)::regclass
               FROM unnest(ARRAY['documents', 'versions']) AS t
               UNION ALL
               SELECT inhrelid::regclass FROM pg_inherits
               WHERE inhparent = format('%I.versions', target)::regclass LOOP
        IF EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = rel AND attname = 'data'
                     AND attcompression IS DISTINCT FROM 'l') THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN data SET COMPRESSION lz4', rel);
        END IF;
    END LOOP;
END
$$;

-- The change feed (docs/changes.md): one row per committed write, in the same statement
-- as the write. Why a third table rather than the versions rows: a log's clear and
-- delete and a prune write no version row (and cannot, without breaking "version N is
-- the N-th item"), an append of 50 items is 50 version rows but one change, and
-- prune_versions deletes versions a lagging reader of the feed may still need. A row
-- here is small (no data: a reader gets the data from the two tables), and it is
-- deleted by prune_changes, on a schedule of its own.
--
-- Order: `xid` is the writing transaction's id, `seq` the write's place in it. A reader
-- only takes rows whose xid is below the oldest transaction still running (so no row
-- can still appear there), in (xid, seq) order: a transaction that started first but
-- commits last cannot be skipped. The write statements also NOTIFY the readers
-- (docstore._sql), which only wakes them.
CREATE TABLE IF NOT EXISTS :"schema".changes (
    xid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    kind           text        NOT NULL,
    name           text        NOT NULL,
    -- The document's version after the write (a clear leaves it as it was).
    version        bigint      NOT NULL,
    -- put | revert | delete | append | rewrite | clear | restore | prune | import
    op             text        NOT NULL,
    written_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT changes_pkey PRIMARY KEY (xid, seq)
);

-- No index on the heads beyond the primary key, by default. Every index on `documents`
-- is paid by every put and append: a GIN entry per put (about half the server time of
-- the head's write), and any index on `updated_at` makes every head update a non-HOT
-- update with a new entry in each index. Without them an append that leaves the
-- metadata alone is a HOT update. A kind that is filtered with where= (or listed by
-- recency) at scale gets an index of its own, partial on that kind:
-- DocStore.create_index(kind) / create_index(kind, on="updated_at")
-- (docs/performance.md, Indexes). Stores created by the first release keep the
-- documents_kind_updated_idx and documents_data_gin_idx they have: neither this file nor
-- the upgrade drops them (docs/upgrading.md says how to replace them).

-- The DDL version, kept as a document of the reserved kind `_docstore`, so that the
-- store stays two tables. A later release upgrades in place from the recorded number,
-- and a release that knows only an earlier one refuses to write here.
--   1: every layout before versions were kept (docs/upgrading.md lists them).
--   2: the change feed's table, security-barrier views, no head index by default, the
--      idempotency keys' two partial indexes.
--   3: the `messages` view left to the layer whose log items it reads (it knows what
--      they hold); a store made before keeps the view it has.
INSERT INTO :"schema".documents AS d (kind, name, mode, version, data)
VALUES ('_docstore', 'schema', 's', 1, '{"ddl_version": 3}')
ON CONFLICT (kind, name) DO UPDATE
    SET data = excluded.data, updated_at = now()
    WHERE (d.data ->> 'ddl_version')::int < (excluded.data ->> 'ddl_version')::int;

-- ---------------------------------------------------------------------------------
-- docstore:views (this line marks them: from here to the end of the file every statement
-- is a CREATE OR REPLACE VIEW, and an upgrade runs them all again after its steps).
-- Views for analysts (docs/analytics.md). Read-only projections of the two tables,
-- replaced in place by every upgrade; reserved kinds (`_...`) are left out. Grant
-- SELECT on these to a reader role and it needs no right on the tables themselves.
-- security_barrier: a reader's own function in a WHERE clause runs only on the rows a
-- view shows, never on the cleared, deleted or reserved rows it filters out.

-- Every live document of every kind, as it stands now. `items` is the number of live
-- items of a log (NULL for snapshot kinds).
CREATE OR REPLACE VIEW :"schema".current_documents WITH (security_barrier) AS
SELECT d.kind, d.name,
       CASE d.mode WHEN 'l' THEN 'log' ELSE 'snapshot' END AS mode,
       d.version, d.schema_version, d.data,
       CASE d.mode WHEN 'l' THEN d.version - d.live_from + 1 END AS items,
       d.created_at, d.updated_at
FROM :"schema".documents d
WHERE NOT d.deleted AND left(d.kind, 1) <> '_';

-- The audit trail of snapshot kinds (configs): every version with who wrote it, when,
-- how (put, revert, delete), and what changed against the version before it:
-- `changed_keys` the top-level keys whose values differ (all keys for a first version,
-- or when the previous one was pruned), `changes` {key: {"old": ..., "new": ...}}.
-- A delete is a tombstone holding the deleted value, so it changes no key.
CREATE OR REPLACE VIEW :"schema".config_changes WITH (security_barrier) AS
SELECT v.kind, v.name, v.version, v.op, v.author, v.written_at, v.schema_version,
       v.data IS DISTINCT FROM p.data AS changed,
       coalesce(c.changed_keys, '{}') AS changed_keys,
       coalesce(c.changes, '{}') AS changes,
       v.data
FROM :"schema".versions v
JOIN :"schema".documents d ON d.kind = v.kind AND d.name = v.name AND d.mode = 's'
LEFT JOIN :"schema".versions p
  ON p.kind = v.kind AND p.name = v.name AND p.version = v.version - 1
LEFT JOIN LATERAL (
    SELECT array_agg(k.key ORDER BY k.key) AS changed_keys,
           jsonb_object_agg(k.key, jsonb_build_object('old', p.data -> k.key,
                                                      'new', v.data -> k.key)) AS changes
    FROM (SELECT jsonb_object_keys(CASE jsonb_typeof(v.data)
                                   WHEN 'object' THEN v.data ELSE '{}' END) AS key
          UNION
          SELECT jsonb_object_keys(CASE jsonb_typeof(p.data)
                                   WHEN 'object' THEN p.data ELSE '{}' END)) AS k
    WHERE (v.data -> k.key) IS DISTINCT FROM (p.data -> k.key)
) c ON true
WHERE left(v.kind, 1) <> '_';
