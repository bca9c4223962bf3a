-- docstore.agents: the agents layer's DDL, beside the core's tables (schema.sql).
--
-- The core knows nothing of what a log item holds; this file knows the layer's message
-- shapes (docstore.agents.messages) and the framework's session list. It is applied by
-- StorageManager.init_db() and `docstore init`, after the core's init_schema(), one
-- statement at a time (the indexes are built CONCURRENTLY: writes go on meanwhile). Every
-- statement is idempotent and none drops or rewrites data; :"schema" is the store's schema,
-- as in schema.sql. A store made before DDL version 3 has the `messages` view from the
-- core's schema.sql: the same view, replaced here by this one.
--
-- Each index below is partial on one kind's live heads: other kinds' writes never add
-- entries to them, and a session hidden by cleanup_old_sessions leaves them. A
-- conversation's append then updates them (its head's updated_at moves), which is the
-- price of a session list that reads only its page (docs/performance.md).

-- Every live item of every log kind, one row each, in the shapes of
-- docstore.agents.messages: `text` is the string content or the text blocks/parts
-- joined by newlines ('' when none), `tool_names` the tools it calls (Anthropic
-- tool_use blocks, then OpenAI tool_calls), `tool_error` whether a tool_result block
-- says is_error, and the token counts under either provider's names.
CREATE OR REPLACE VIEW :"schema".messages WITH (security_barrier) AS
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

-- The framework's session list, newest first (get_sessions_list with no filter,
-- order updated_at DESC, name DESC, read backwards), and cleanup_old_sessions: the
-- newest max_sessions skipped, the older ones hidden from there, and those not written
-- for `days` from the oldest end (docstore's prune(restorable=True)).
CREATE INDEX CONCURRENTLY IF NOT EXISTS conversation_recent_idx ON :"schema".documents
    (updated_at, name) WHERE kind = 'conversation' AND NOT deleted;

-- The list filtered by agent (an agent's own runs: `name` and not a workflow) or by
-- workflow (its runs: `name` and a workflow), in the same order. Workflow or not is an
-- int, not a boolean: the planner turns `boolean = false` into `NOT boolean`, which it
-- then re-checks on every head it counts; an int equality stays an index condition, and
-- the count of an agent's sessions skips the heap's all-visible pages.
CREATE INDEX CONCURRENTLY IF NOT EXISTS conversation_by_name_idx ON :"schema".documents
    ((data ->> 'name'), (CASE WHEN data ->> 'result_type' = 'workflow' THEN 1 ELSE 0 END),
     updated_at, name)
    WHERE kind = 'conversation' AND NOT deleted;

-- The QA results' list, newest first (get_qa_results_list).
CREATE INDEX CONCURRENTLY IF NOT EXISTS qa_result_recent_idx ON :"schema".documents
    (created_at, name) WHERE kind = 'qa_result' AND NOT deleted;

-- The lists' totals, kept by triggers rather than counted (a count of the matching heads
-- grows with the sessions; this costs the same at any size). A counted group is a kind
-- and a key: '' every live head; a conversation's 'a' or 'w' and its `name` (an agent's
-- own runs, a workflow's: get_sessions_list's filters); a QA result's 'e' and its
-- evaluation_config_id, 'c' and its component_type, 'b' and both (get_qa_results_list's,
-- whose containment match a key holds only for a string). Each change of a counted
-- head's group inserts its -1/+1 rows into list_count_deltas, in the writer's own
-- transaction: rows only ever inserted, so concurrent creators never wait on one
-- another (a single counter row would serialise them until commit), and a transaction
-- rolled back leaves none. A total is list_counts' row plus its group's deltas, read in
-- one snapshot with the page; the fold (docstore.agents._layout.FOLD) moves the deltas
-- into list_counts now and then, in one statement.
CREATE OR REPLACE FUNCTION :"schema".list_count_keys(kind text, data jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $list_count_keys$
DECLARE
    keys text[] := ARRAY[''];
    evaluation jsonb;
    component jsonb;
BEGIN
    IF kind = 'conversation' THEN
        IF data ->> 'name' IS NOT NULL THEN
            keys := keys || (CASE WHEN data ->> 'result_type' = 'workflow' THEN 'w' ELSE 'a' END
                             || (data ->> 'name'));
        END IF;
        RETURN keys;
    ELSIF kind = 'qa_result' THEN
        evaluation := data -> 'evaluation_config_id';
        component := data -> 'component_type';
        IF jsonb_typeof(evaluation) = 'string' THEN
            keys := keys || ('e' || (evaluation #>> '{}'));
        END IF;
        IF jsonb_typeof(component) = 'string' THEN
            keys := keys || ('c' || (component #>> '{}'));
        END IF;
        IF jsonb_typeof(evaluation) = 'string' AND jsonb_typeof(component) = 'string' THEN
            keys := keys || ('b' || jsonb_build_array(evaluation, component)::text);
        END IF;
        RETURN keys;
    END IF;
    RETURN '{}';
END
$list_count_keys$;

-- A head's change as deltas: its old groups -1 (when it was live), its new ones +1 (when
-- it is), those in both left out. Static SQL while the schema keeps the name it had when
-- this ran (plans cached per session); dynamic SQL on TG_TABLE_SCHEMA once renamed. In
-- plpgsql, keys and all: a SQL function's array unnested in the INSERT cost a new head
-- several times more server time. SECURITY DEFINER, so that a role allowed to write the
-- heads needs no grant on the counts (one made after init_db, with the grants
-- docs/reliability.md lists, writes sessions as before); every name in it is qualified
-- and its search_path pinned, so no caller's schema can stand in for one.
CREATE OR REPLACE FUNCTION :"schema".list_count_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $list_count_change$
DECLARE
    old_kind text;
    old_data jsonb;
    new_kind text;
    new_data jsonb;
    old_keys text[] := '{}';
    new_keys text[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' AND NOT OLD.deleted THEN
        old_kind := OLD.kind;
        old_data := OLD.data;
    END IF;
    IF TG_OP <> 'DELETE' AND NOT NEW.deleted THEN
        new_kind := NEW.kind;
        new_data := NEW.data;
    END IF;
    IF TG_TABLE_SCHEMA <> :'schema' THEN
        EXECUTE format('SELECT %1$I.list_count_keys($1, $2), %1$I.list_count_keys($3, $4)', TG_TABLE_SCHEMA)
        INTO old_keys, new_keys USING old_kind, old_data, new_kind, new_data;
        EXECUTE format(
            'INSERT INTO %I.list_count_deltas (kind, key, n)
             SELECT $1, k, -1 FROM unnest($2::text[]) AS k WHERE $1 IS DISTINCT FROM $3 OR NOT k = ANY ($4)
             UNION ALL
             SELECT $3, k, 1 FROM unnest($4::text[]) AS k WHERE $1 IS DISTINCT FROM $3 OR NOT k = ANY ($2)',
            TG_TABLE_SCHEMA)
        USING old_kind, old_keys, new_kind, new_keys;
        RETURN NULL;
    END IF;
    old_keys := :"schema".list_count_keys(old_kind, old_data);
    new_keys := :"schema".list_count_keys(new_kind, new_data);
    INSERT INTO :"schema".list_count_deltas (kind, key, n)
    SELECT old_kind, k, -1 FROM unnest(old_keys) AS k
    WHERE old_kind IS DISTINCT FROM new_kind OR NOT k = ANY (new_keys)
    UNION ALL
    SELECT new_kind, k, 1 FROM unnest(new_keys) AS k
    WHERE old_kind IS DISTINCT FROM new_kind OR NOT k = ANY (old_keys);
    RETURN NULL;
END
$list_count_change$;

-- A TRUNCATE of the heads empties the counts with them.
CREATE OR REPLACE FUNCTION :"schema".list_count_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $list_count_truncate$
BEGIN
    EXECUTE format('DELETE FROM %I.list_count_deltas', TG_TABLE_SCHEMA);
    EXECUTE format('DELETE FROM %I.list_counts', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$list_count_truncate$;

-- The tables, the triggers and the counts of the heads already there, in one transaction
-- under a lock that waits for the writes in flight and holds new ones until the seeding
-- commits: every head is counted either by the seeding or by a trigger, never both or
-- neither (a lock only init_db takes, and only when the triggers are missing). The
-- tables exist only with the triggers and their seeded counts, so a reader of them reads
-- an exact total. The triggers' WHEN clauses keep other kinds' writes, and a
-- conversation's append that moves it to no other group, out of the function: an
-- append evaluates the clause (a few field reads of the head's metadata) and no more.
DO $list_count_setup$
DECLARE
    grantee text;
    privilege text;
BEGIN
    IF obj_description(to_regclass(format('%I.list_counts', :'schema')), 'pg_class')
           = 'docstore.agents list counts 1'
       AND (SELECT count(*) FROM pg_trigger
            WHERE tgrelid = format('%I.documents', :'schema')::regclass
              AND tgname IN ('list_count_insert', 'list_count_update', 'list_count_delete',
                             'list_count_truncate')
              AND tgenabled = 'O') = 4 THEN
        RETURN;
    END IF;
    LOCK TABLE :"schema".documents IN SHARE ROW EXCLUSIVE MODE;
    CREATE TABLE IF NOT EXISTS :"schema".list_counts (
        kind text   NOT NULL,
        key  text   NOT NULL,
        n    bigint NOT NULL,
        CONSTRAINT list_counts_pkey PRIMARY KEY (kind, key)
    );
    -- No index: the fold keeps it to a few rows, and each insert stays one heap row.
    CREATE TABLE IF NOT EXISTS :"schema".list_count_deltas (
        kind text   NOT NULL,
        key  text   NOT NULL,
        n    bigint NOT NULL
    );
    -- DELETE, not TRUNCATE: its ACCESS EXCLUSIVE lock would wait for a reader of a total,
    -- which may then write a head and wait for ours (a deadlock).
    DELETE FROM :"schema".list_count_deltas;
    DELETE FROM :"schema".list_counts;
    -- The roles that read or write the heads read or write the counts (a writer's
    -- trigger inserts deltas, a list of theirs may fold them; docs/reliability.md).
    FOR grantee, privilege IN
        SELECT DISTINCT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
               a.privilege_type
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = format('%I.documents', :'schema')::regclass AND a.grantee <> c.relowner
          AND a.privilege_type IN ('SELECT', 'INSERT')
    LOOP
        EXECUTE format('GRANT %s ON %I.list_counts, %I.list_count_deltas TO %s',
                       CASE privilege WHEN 'SELECT' THEN 'SELECT' ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
                       :'schema', :'schema', grantee);
    END LOOP;
    DROP TRIGGER IF EXISTS list_count_insert ON :"schema".documents;
    DROP TRIGGER IF EXISTS list_count_update ON :"schema".documents;
    DROP TRIGGER IF EXISTS list_count_delete ON :"schema".documents;
    DROP TRIGGER IF EXISTS list_count_truncate ON :"schema".documents;
    CREATE TRIGGER list_count_insert AFTER INSERT ON :"schema".documents FOR EACH ROW
        WHEN (NEW.kind IN ('conversation', 'qa_result') AND NOT NEW.deleted)
        EXECUTE FUNCTION :"schema".list_count_change();
    CREATE TRIGGER list_count_delete AFTER DELETE ON :"schema".documents FOR EACH ROW
        WHEN (OLD.kind IN ('conversation', 'qa_result') AND NOT OLD.deleted)
        EXECUTE FUNCTION :"schema".list_count_change();
    CREATE TRIGGER list_count_update AFTER UPDATE ON :"schema".documents FOR EACH ROW
        WHEN ((NOT OLD.deleted AND OLD.kind IN ('conversation', 'qa_result')
               OR NOT NEW.deleted AND NEW.kind IN ('conversation', 'qa_result'))
              AND (OLD.kind <> NEW.kind OR OLD.deleted <> NEW.deleted
                   OR NEW.kind = 'conversation'
                      AND (OLD.data -> 'name' IS DISTINCT FROM NEW.data -> 'name'
                           OR (OLD.data ->> 'result_type' = 'workflow')
                              IS DISTINCT FROM (NEW.data ->> 'result_type' = 'workflow'))
                   OR NEW.kind = 'qa_result'
                      AND (OLD.data -> 'evaluation_config_id' IS DISTINCT FROM NEW.data -> 'evaluation_config_id'
                           OR OLD.data -> 'component_type' IS DISTINCT FROM NEW.data -> 'component_type')))
        EXECUTE FUNCTION :"schema".list_count_change();
    CREATE TRIGGER list_count_truncate AFTER TRUNCATE ON :"schema".documents FOR EACH STATEMENT
        EXECUTE FUNCTION :"schema".list_count_truncate();
    INSERT INTO :"schema".list_counts (kind, key, n)
    SELECT d.kind, k.key, count(*)
    FROM :"schema".documents d, unnest(:"schema".list_count_keys(d.kind, d.data)) AS k(key)
    WHERE d.kind IN ('conversation', 'qa_result') AND NOT d.deleted
    GROUP BY d.kind, k.key;
    COMMENT ON TABLE :"schema".list_counts IS 'docstore.agents list counts 1';
END
$list_count_setup$;
