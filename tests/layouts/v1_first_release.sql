-- Frozen copy of schema.sql at commit b7a29a5 (tests/layouts/README.md): do not edit.
-- b7a29a5: schema.sql: lz4 compression for data columns where the server has it (
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

-- lz4 where the server was built with it: it compresses and decompresses large values
-- several times faster than the default pglz (a 10,000-config put_many spends a fifth
-- less time in the server). Set only when not set yet: the ALTER takes a brief lock.
-- (:'schema' is the schema's name as a string literal, psql's spelling again.)
SET docstore.ddl_schema = :'schema';
DO $$
DECLARE
    target text := current_setting('docstore.ddl_schema');
    tbl text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_settings
                   WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        RETURN;
    END IF;
    FOREACH tbl IN ARRAY ARRAY['documents', 'versions'] LOOP
        IF EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = format('%I.%I', target, tbl)::regclass
                     AND attname = 'data' AND attcompression IS DISTINCT FROM 'l') THEN
            EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN data SET COMPRESSION lz4',
                           target, tbl);
        END IF;
    END LOOP;
END
$$;

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

-- ---------------------------------------------------------------------------------
-- Views for analysts (docs/analytics.md). Read-only projections of the two tables,
-- replaced in place on every init_schema; reserved kinds (`_...`) are left out. Grant
-- SELECT on these to a reader role and it needs no right on the tables themselves.

-- Every live document of every kind, as it stands now. `items` is the number of live
-- items of a log (NULL for snapshot kinds).
CREATE OR REPLACE VIEW :"schema".current_documents AS
SELECT d.kind, d.name,
       CASE d.mode WHEN 'l' THEN 'log' ELSE 'snapshot' END AS mode,
       d.version, d.schema_version, d.data,
       CASE d.mode WHEN 'l' THEN d.version - d.live_from + 1 END AS items,
       d.created_at, d.updated_at
FROM :"schema".documents d
WHERE NOT d.deleted AND left(d.kind, 1) <> '_';

-- Every live item of every log kind, one row each, in the shapes of
-- docstore.agents.messages: `text` is the string content or the text blocks/parts
-- joined by newlines ('' when none), `tool_names` the tools it calls (Anthropic
-- tool_use blocks, then OpenAI tool_calls), `tool_error` whether a tool_result block
-- says is_error, and the token counts under either provider's names.
CREATE OR REPLACE VIEW :"schema".messages AS
SELECT d.kind, d.name,
       d.data ->> 'agent_name' AS agent_name,
       d.data ->> 'session_id' AS session_id,
       v.version,
       v.data ->> 'role' AS role,
       v.written_at,
       CASE jsonb_typeof(v.data -> 'content')
           WHEN 'string' THEN v.data ->> 'content'
           WHEN 'array' THEN coalesce((
               SELECT string_agg(b.block ->> 'text', chr(10) ORDER BY b.n)
               FROM jsonb_array_elements(v.data -> 'content') WITH ORDINALITY AS b(block, n)
               WHERE b.block ->> 'type' = 'text'), '')
           ELSE ''
       END AS text,
       ARRAY(
           SELECT b.block ->> 'name'
           FROM jsonb_array_elements(CASE jsonb_typeof(v.data -> 'content')
                                     WHEN 'array' THEN v.data -> 'content' ELSE '[]' END)
                WITH ORDINALITY AS b(block, n)
           WHERE b.block ->> 'type' = 'tool_use'
           ORDER BY b.n
       ) || ARRAY(
           SELECT c.call #>> '{function,name}'
           FROM jsonb_array_elements(CASE jsonb_typeof(v.data -> 'tool_calls')
                                     WHEN 'array' THEN v.data -> 'tool_calls' ELSE '[]' END)
                WITH ORDINALITY AS c(call, n)
           ORDER BY c.n
       ) AS tool_names,
       coalesce(v.data -> 'content' @> '[{"type": "tool_result", "is_error": true}]', false)
           AS tool_error,
       CASE WHEN jsonb_typeof(v.data #> '{usage,input_tokens}') = 'number'
                THEN (v.data #>> '{usage,input_tokens}')::numeric::bigint
            WHEN jsonb_typeof(v.data #> '{usage,prompt_tokens}') = 'number'
                THEN (v.data #>> '{usage,prompt_tokens}')::numeric::bigint
       END AS input_tokens,
       CASE WHEN jsonb_typeof(v.data #> '{usage,output_tokens}') = 'number'
                THEN (v.data #>> '{usage,output_tokens}')::numeric::bigint
            WHEN jsonb_typeof(v.data #> '{usage,completion_tokens}') = 'number'
                THEN (v.data #>> '{usage,completion_tokens}')::numeric::bigint
       END AS output_tokens,
       v.data AS item
FROM :"schema".documents d
JOIN :"schema".versions v
  ON v.kind = d.kind AND v.name = d.name
 AND v.version >= d.live_from AND v.version <= d.version
WHERE d.mode = 'l' AND NOT d.deleted AND left(d.kind, 1) <> '_';

-- The audit trail of snapshot kinds (configs): every version with who wrote it, when,
-- how (put, revert, delete), and what changed against the version before it:
-- `changed_keys` the top-level keys whose values differ (all keys for a first version,
-- or when the previous one was pruned), `changes` {key: {"old": ..., "new": ...}}.
-- A delete is a tombstone holding the deleted value, so it changes no key.
CREATE OR REPLACE VIEW :"schema".config_changes AS
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
