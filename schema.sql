-- docstore: all of its DDL, in one file.
--
-- Two tables keyed by (kind, name): `documents` holds each document's head (its current
-- state) and `versions` holds every versioned record ever written, append-only.
--
-- :"schema" is the target schema's name, written the way psql spells a quoted variable,
-- so this file runs as it is:
--     psql -v schema=docstore -f schema.sql
-- DocStore.init_schema() substitutes the same placeholder with a quoted identifier and
-- runs the file under an advisory lock. Every statement is idempotent and nothing here
-- ever drops or rewrites data, so re-running it is always safe.

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

-- Listing a kind by recency (prune by age, "sessions gone stale").
CREATE INDEX IF NOT EXISTS documents_kind_updated_idx
    ON :"schema".documents (kind, updated_at);

-- Containment (@>) and JSONPath (@?, @@) filters on current documents.
CREATE INDEX IF NOT EXISTS documents_data_gin_idx
    ON :"schema".documents USING gin (data jsonb_path_ops);

-- The DDL version, kept as a document of the reserved kind `_docstore`, so that the
-- store stays two tables. A later release upgrades in place from the recorded number.
INSERT INTO :"schema".documents AS d (kind, name, mode, version, data)
VALUES ('_docstore', 'schema', 's', 1, '{"ddl_version": 1}')
ON CONFLICT (kind, name) DO UPDATE
    SET data = excluded.data, updated_at = now()
    WHERE (d.data ->> 'ddl_version')::int < (excluded.data ->> 'ddl_version')::int;
