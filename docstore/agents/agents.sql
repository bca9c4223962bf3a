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
