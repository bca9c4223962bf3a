"""``docstore demo``: a short, deterministic tour of docstore on a real PostgreSQL.

It syncs the example agent configs shipped in ``docstore/demo_configs``, simulates three
conversations (Anthropic- and OpenAI-style messages, tool calls included), edits an agent
config and shows its version history and a diff, then runs three analytics queries in
plain SQL over the two tables. Everything it writes goes to one schema, by default
``docstore_demo``, which it resets on every run.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from psycopg import sql

from ._connect import describe_dsn
from .cli import _diff, _out
from .cli._errors import CliError
from .cli._store import raw
from .cli._sync import sync_configs
from .store import DocStore

__all__ = ["CONVERSATIONS", "config_dir", "run_demo"]


def config_dir() -> Path:
    """The example configs shipped with docstore."""
    return Path(str(resources.files("docstore").joinpath("demo_configs")))


def _tool_use(id_: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": args}


def _tool_result(id_: str, text: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": id_, "content": text}


def _call(id_: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


# (agent, session, turns): each turn is appended on its own, as a host saves them. Session
# ids are unique across agents, as the framework makes them (a session is named by its id).
CONVERSATIONS: list[tuple[str, str, list[list[dict[str, Any]]]]] = [
    (
        "weather",
        "s1",
        [
            [{"role": "user", "content": "What's the weather in Paris?"}],
            [
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Let me check."},
                        _tool_use("t1", "get_forecast", {"city": "Paris"}),
                    ],
                },
                {"role": "user", "content": [_tool_result("t1", "18°C, light rain")]},
                {"role": "assistant", "content": "18°C with light rain: take an umbrella."},
            ],
            [{"role": "user", "content": "And tomorrow?"}],
            [
                {
                    "role": "assistant",
                    "content": [_tool_use("t2", "get_forecast", {"city": "Paris", "day": 1})],
                },
                {"role": "user", "content": [_tool_result("t2", "22°C, sunny")]},
                {"role": "assistant", "content": "Tomorrow: 22°C and sunny."},
            ],
        ],
    ),
    (
        "weather",
        "s2",
        [
            [{"role": "user", "content": "Is it windy in Oslo?"}],
            [
                {"role": "assistant", "content": [_tool_use("t1", "get_wind", {"city": "Oslo"})]},
                {"role": "user", "content": [_tool_result("t1", "35 km/h from the north")]},
                {"role": "assistant", "content": "Yes: 35 km/h from the north."},
            ],
        ],
    ),
    (
        "planner",
        "s3",
        [
            [
                {"role": "system", "content": "You plan trips."},
                {"role": "user", "content": "Plan a day in Rome."},
            ],
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        _call("c1", "get_forecast", '{"city": "Rome"}'),
                        _call("c2", "find_museums", '{"city": "Rome"}'),
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "25°C, clear"},
                {"role": "tool", "tool_call_id": "c2", "content": "Vatican Museums, Borghese"},
            ],
            [
                {
                    "role": "assistant",
                    "content": "Morning at the Vatican Museums, afternoon in the "
                    "Borghese gardens: 25°C and clear.",
                }
            ],
        ],
    ),
]

# The demo's edit of the weather agent: a new prompt and a second tool server.
_EDIT = {
    "system_prompt": "You are a concise weather assistant. Give temperatures in °C.",
    "mcp_servers": ["weather", "planner"],
    "max_iterations": 20,
}

_ANALYTICS: list[tuple[str, str, list[str], str]] = [
    (
        "messages_by_agent",
        "Messages per agent and role (the messages view)",
        ["agent", "role", "count"],
        """
SELECT agent_name AS agent, role, count(*) AS count
FROM {s}.messages
GROUP BY 1, 2 ORDER BY 1, 2""",
    ),
    (
        "tool_calls",
        "Tool calls by tool, both message formats (the messages view)",
        ["tool", "count"],
        """
SELECT tool, count(*) AS count
FROM {s}.messages, unnest(tool_names) AS tool
GROUP BY tool ORDER BY count DESC, tool""",
    ),
    (
        "agents",
        "Agents: their model, config versions and sessions",
        ["agent", "provider", "model", "versions", "sessions"],
        """
SELECT a.name, l.data ->> 'provider', l.data ->> 'model', a.version,
       (SELECT count(*) FROM {s}.documents c
        WHERE c.kind = 'conversation' AND NOT c.deleted
          AND c.data ->> 'agent_name' = a.name) AS sessions
FROM {s}.documents a
LEFT JOIN {s}.documents l ON l.kind = 'llm' AND l.name = a.data ->> 'llm_config_id'
WHERE a.kind = 'agent' AND NOT a.deleted
ORDER BY a.name""",
    ),
]


def _prepare(store: DocStore, reset: bool) -> None:
    s = sql.Identifier(store.schema)
    if reset:
        with store.pool.connection() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(s))
    store.init_schema()
    if not reset:
        ((count,),) = raw(
            store, sql.SQL("SELECT count(*) FROM {s}.documents WHERE left(kind, 1) <> '_'").format(s=s)
        )
        if count:
            raise CliError(
                f"schema {store.schema!r} already holds {count} document(s): the "
                "demo writes into an empty schema (or run it without --schema: "
                "it then uses docstore_demo, reset on every run)"
            )


def run_demo(
    store: DocStore, *, reset: bool = True, show: bool = True, command: str = "docstore"
) -> dict[str, Any]:
    """Run the tour on ``store``; prints it when ``show``; returns what it found."""
    console = _out.console()

    def heading(text: str) -> None:
        if show:
            console.rule(f"[bold]{text}", align="left")

    from .agents.storage import conversation_name

    _prepare(store, reset)
    report: dict[str, Any] = {"database": describe_dsn(str(store.pool.conninfo)), "schema": store.schema}
    if show:
        console.print(f"docstore demo in {report['database']}, schema {store.schema!r}")

    heading("1. Sync the example agent configs")
    synced = sync_configs(store, config_dir())
    again = sync_configs(store, config_dir())
    report["sync"] = synced["kinds"]
    report["resync_written"] = sum(k["written"] for k in again["kinds"].values())
    if show:
        _out.table(None, ["kind", "written"], [[k, v["written"]] for k, v in synced["kinds"].items()])
        console.print(f"Synced again: {report['resync_written']} written (unchanged configs write nothing).")

    heading("2. Simulate three conversations")
    conversations = []
    for agent, session, turns in CONVERSATIONS:
        name = conversation_name(agent, session)
        meta = {"agent_name": agent, "session_id": session}
        for turn in turns:
            version = store.append("conversation", name, turn, meta=meta)
        conversations.append({"name": name, "messages": version})
    report["conversations"] = conversations
    if show:
        _out.table(None, ["conversation", "messages"], [[c["name"], c["messages"]] for c in conversations])
        from .cli._docs import message_lines

        console.print("weather's session s1, the last 4 messages (`docstore history weather s1 --last 4`):")
        for entry in store.entries("conversation", conversation_name("weather", "s1"), last=4):
            dumped = store.kinds.get("conversation").adapter.dump_python(
                entry.item, mode="json", by_alias=True
            )
            for line in message_lines(dumped):
                console.print(f"[dim]{entry.version:>5}[/] {line}")

    heading("3. Edit a config: its history and a diff")
    current = store.get("agent", "weather")
    dumped = store.kinds.get("agent").adapter.dump_python(current.data, mode="json", by_alias=True)
    edited = store.put("agent", "weather", {**dumped, **_EDIT}, expected_version=current.version)
    versions = store.versions("agent", "weather")
    old, new = (
        store.kinds.get("agent").adapter.dump_python(d.data, mode="json", by_alias=True)
        for d in (versions[0], versions[-1])
    )
    changes = _diff.diff(old, new)
    report["edit"] = {
        "kind": "agent",
        "name": "weather",
        "version": edited.version,
        "versions": [d.version for d in versions],
        "changes": changes,
    }
    if show:
        _out.table(
            "agent 'weather' (`docstore log agent weather`)",
            ["version", "written"],
            [[d.version, _out.when(d.updated_at)] for d in versions],
        )
        console.print(f"`docstore diff agent weather 1 {edited.version}`:")
        for line in _diff.render(changes):
            console.print(line, markup=False, highlight=False)

    heading("4. Three analytics queries (plain SQL on the analyst views and the tables)")
    analytics: dict[str, list[list[Any]]] = {}
    s = sql.Identifier(store.schema)
    for key, title, columns, query in _ANALYTICS:
        rows = raw(store, sql.SQL(query.replace("{s}", "{schema}")).format(schema=s))
        analytics[key] = [list(r) for r in rows]
        if show:
            _out.table(title, columns, rows)
    report["analytics"] = analytics
    if show:
        # One command per line: a pasted line must run one docstore command, not a pipeline.
        prefix = f"{command} --schema {store.schema}"
        console.print("Explore it, one command at a time:", markup=False, highlight=False)
        for tail in ("status", "ls agent", "history planner s3", "export"):
            console.print(f"  {prefix} {tail}", markup=False, highlight=False, soft_wrap=True)
    return report
