"""``docstore demo``: a short, deterministic tour of docstore on a real PostgreSQL.

It syncs the example agent configs shipped in ``docstore/cli/demo_configs``, simulates three
conversations (Anthropic- and OpenAI-style messages, tool calls included), edits an agent
config and shows its version history and a diff, then runs three analytics queries in
plain SQL over the two tables. Everything it writes goes to one schema, by default
``docstore_demo``, which it resets on every run.

The tour uses docstore as an application would (the store, ``docstore.agents``); how it
is shown is its caller's business, through :class:`Show` (the ``docstore demo`` command
prints it with the command's tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from ..agents import ConfigFileError, StorageManager, conversation_name, sync_path
from ..dsn import describe_dsn
from ..errors import DocStoreError
from ..store import DocStore
from . import _jsondiff

__all__ = ["CONVERSATIONS", "Show", "config_dir", "run_demo"]


class Show(Protocol):
    """Where :func:`run_demo` shows the tour as it goes."""

    def heading(self, text: str) -> None:
        """A step's title."""

    def note(self, text: str) -> None:
        """A line of prose."""

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Rows under column names (cells may be datetimes or None)."""

    def messages(self, items: Sequence[tuple[int, Any]]) -> None:
        """Conversation items as JSON values, each with its version, as `docstore history` shows them."""

    def lines(self, lines: Sequence[str]) -> None:
        """Lines shown exactly as they are (a diff)."""


def config_dir() -> Path:
    """The example configs shipped with docstore."""
    return Path(str(resources.files("docstore.cli").joinpath("demo_configs")))


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


class _Quiet:
    """A :class:`Show` that shows nothing."""

    def heading(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        pass

    def messages(self, items: Sequence[tuple[int, Any]]) -> None:
        pass

    def lines(self, lines: Sequence[str]) -> None:
        pass


def _rows(store: DocStore, query: sql.Composable) -> list[tuple[Any, ...]]:
    try:
        with store.pool.connection() as conn:
            rows: list[tuple[Any, ...]] = conn.execute(query).fetchall()
            return rows
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DocStoreError(f"demo query in schema {store.schema!r}: {first}") from None


def _sync(store: DocStore) -> dict[str, dict[str, int]]:
    """Sync the example configs; written and unchanged configs per kind."""
    report = sync_path(store, config_dir())
    if not report.applied:  # the shipped configs are broken: a packaging error
        raise ConfigFileError(list(report.problems), warnings=list(report.warnings))
    kinds: dict[str, dict[str, int]] = {}
    for kind, _name, _version in report.written:
        kinds.setdefault(kind, {"written": 0, "unchanged": 0})["written"] += 1
    for kind, _name in report.unchanged:
        kinds.setdefault(kind, {"written": 0, "unchanged": 0})["unchanged"] += 1
    return dict(sorted(kinds.items()))


def run_demo(store: DocStore, *, reset: bool = True, show: Show | None = None) -> dict[str, Any]:
    """Run the tour on ``store``, shown on ``show`` as it goes; returns what it found.

    ``reset``: drop the store's schema first. Without it the tour writes into the schema
    as it is, which should hold no documents (the command refuses one that does).
    """
    if reset:
        with store.pool.connection() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(store.schema)))
    # The tour's queries read the agents layer's messages view: its DDL, not just the core's.
    StorageManager(store).init_db()
    report: dict[str, Any] = {"database": describe_dsn(str(store.pool.conninfo)), "schema": store.schema}
    out = show if show is not None else _Quiet()
    out.note(f"docstore demo in {report['database']}, schema {store.schema!r}")

    out.heading("1. Sync the example agent configs")
    synced = _sync(store)
    again = _sync(store)
    report["sync"] = synced
    report["resync_written"] = sum(k["written"] for k in again.values())
    out.table(None, ["kind", "written"], [[k, v["written"]] for k, v in synced.items()])
    out.note(f"Synced again: {report['resync_written']} written (unchanged configs write nothing).")

    out.heading("2. Simulate three conversations")
    conversations = []
    for agent, session, turns in CONVERSATIONS:
        name = conversation_name(agent, session)
        meta = {"agent_name": agent, "session_id": session}
        for turn in turns:
            version = store.append("conversation", name, turn, meta=meta)
        conversations.append({"name": name, "messages": version})
    report["conversations"] = conversations
    out.table(None, ["conversation", "messages"], [[c["name"], c["messages"]] for c in conversations])
    if show is not None:  # a read that only the showing needs
        show.note("weather's session s1, the last 4 messages (`docstore history weather s1 --last 4`):")
        adapter = store.kinds.get("conversation").adapter
        last4 = store.read("conversation", conversation_name("weather", "s1"), last=4)
        show.messages(
            [
                (version, adapter.dump_python(item, mode="json", by_alias=True))
                for version, item in zip(last4.versions, last4, strict=True)
            ]
        )

    out.heading("3. Edit a config: its history and a diff")
    agents = store.kinds.get("agent").adapter
    current = store.get("agent", "weather")
    dumped = agents.dump_python(current.data, mode="json", by_alias=True)
    edited = store.put("agent", "weather", {**dumped, **_EDIT}, expected_version=current.version)
    versions = store.versions("agent", "weather")
    old, new = (agents.dump_python(d.data, mode="json", by_alias=True) for d in (versions[0], versions[-1]))
    changes = _jsondiff.diff(old, new)
    report["edit"] = {
        "kind": "agent",
        "name": "weather",
        "version": edited.version,
        "versions": [d.version for d in versions],
        "changes": changes,
    }
    out.table(
        "agent 'weather' (`docstore log agent weather`)",
        ["version", "written"],
        [[d.version, d.updated_at] for d in versions],
    )
    out.note(f"`docstore diff agent weather 1 {edited.version}`:")
    out.lines(_jsondiff.render(changes))

    out.heading("4. Three analytics queries (plain SQL on the analyst views and the tables)")
    analytics: dict[str, list[list[Any]]] = {}
    s = sql.Identifier(store.schema)
    for key, title, columns, query in _ANALYTICS:
        rows = _rows(store, sql.SQL(query.replace("{s}", "{schema}")).format(schema=s))
        analytics[key] = [list(r) for r in rows]
        out.table(title, columns, rows)
    report["analytics"] = analytics
    return report
