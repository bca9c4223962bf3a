"""docs/analytics.md runs: every SQL block of it, against seeded data, with its result asserted.

The blocks are read out of the doc itself, so the doc is what is tested.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from docstore import DocStore
from docstore.agents import StorageManager, agent_registry

DOC = Path(__file__).resolve().parent.parent / "docs" / "analytics.md"
_BLOCK = re.compile(r"^```(sql|python)\n(.*?)^```", re.M | re.S)
_NAME = re.compile(r"^(?:--|#) name: (\w+)\n")


def doc_blocks(language: str = "sql", path: Path = DOC) -> dict[str, str]:
    """The named fenced blocks of ``language`` in a doc, by name."""
    blocks: dict[str, str] = {}
    for lang, body in _BLOCK.findall(path.read_text(encoding="utf-8")):
        if lang != language:
            continue
        match = _NAME.match(body)
        assert match or language != "sql", f"an unnamed sql block in {path.name}:\n{body}"
        if match:
            assert match.group(1) not in blocks, f"two blocks named {match.group(1)}"
            blocks[match.group(1)] = body
    return blocks


def for_schema(text: str, schema: str) -> str:
    """A doc's SQL, with the docs' schema name ``docstore`` replaced by the test's."""
    text = re.sub(r"\bSCHEMA docstore\b", f'SCHEMA "{schema}"', text)
    return re.sub(r"\bdocstore\.(?=[a-z_]+\b)", f'"{schema}".', text)


# --- seeded data -------------------------------------------------------------------


def _tool_use(name: str, call: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call, "name": name, "input": {"q": call}}


CONVERSATIONS: dict[str, tuple[str, int, list[dict[str, Any]]]] = {
    # name: (agent, days ago, messages)
    "weather/s1": (
        "weather",
        2,
        [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Checking."}, _tool_use("forecast", "c1")],
                "usage": {"input_tokens": 100, "output_tokens": 20},
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "sun"}]},
            {"role": "assistant", "content": "Sunny.", "usage": {"input_tokens": 150, "output_tokens": 10}},
        ],
    ),
    "weather/s2": (
        "weather",
        1,
        [
            {"role": "user", "content": "And Bergen?"},
            {
                "role": "assistant",
                "content": [_tool_use("forecast", "c2")],
                "usage": {"input_tokens": 80, "output_tokens": 15},
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c2", "content": "timeout", "is_error": True}
                ],
            },
        ],
    ),
    "travel/s3": (
        "travel",
        1,
        [
            {"role": "system", "content": "You book trips."},
            {"role": "user", "content": [{"type": "text", "text": "Paris, May 3"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "f1",
                        "type": "function",
                        "function": {"name": "search_flights", "arguments": "{}"},
                    },
                    {
                        "id": "h1",
                        "type": "function",
                        "function": {"name": "search_hotels", "arguments": "{}"},
                    },
                ],
                "usage": {"prompt_tokens": 200, "completion_tokens": 30},
            },
            {"role": "tool", "tool_call_id": "f1", "content": "AF123"},
            {"role": "tool", "tool_call_id": "h1", "content": "Hotel du Nord"},
            {
                "role": "assistant",
                "content": "Booked.",
                "usage": {"prompt_tokens": 300, "completion_tokens": 40},
            },
        ],
    ),
    "travel/s4": (
        "travel",
        30,
        [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hi! Where to?"},
        ],
    ),
    "support/s5": (
        "support",
        0,
        [
            {"role": "user", "content": "My order is late"},
            {"role": "assistant", "content": "Sorry to hear that."},
            {"role": "user", "content": "It is order 42"},
        ],
    ),
}

# support/s5 is compacted: these replace its three messages.
COMPACTED = [
    {"role": "user", "content": "Summary: order 42 is late."},
    {"role": "assistant", "content": "Refund issued.", "usage": {"input_tokens": 50, "output_tokens": 5}},
]


def _backdate(store: DocStore, kind: str, name: str, days: int) -> None:
    """Move a document's times to noon, ``days`` days ago."""
    at = "date_trunc('day', now()) - make_interval(days => %(days)s) + interval '12 hours'"
    s = f'"{store.schema}"'
    with store.pool.connection() as conn, conn.transaction():
        args = {"kind": kind, "name": name, "days": days}
        conn.execute(
            f"UPDATE {s}.versions SET written_at = {at} WHERE kind = %(kind)s AND name = %(name)s", args
        )
        conn.execute(
            f"UPDATE {s}.documents SET created_at = {at}, updated_at = {at} "
            "WHERE kind = %(kind)s AND name = %(name)s",
            args,
        )


def _backdate_version(store: DocStore, kind: str, name: str, version: int, days: int) -> None:
    with store.pool.connection() as conn:
        conn.execute(
            f"UPDATE \"{store.schema}\".versions SET written_at = date_trunc('day', now()) "
            "- make_interval(days => %s) + interval '12 hours' "
            "WHERE kind = %s AND name = %s AND version = %s",
            [days, kind, name, version],
        )


def seed(store: DocStore) -> None:
    for kind in agent_registry():
        store.kinds.add(kind)

    store.put(
        "llm",
        "sonnet",
        {"name": "sonnet", "provider": "anthropic", "model": "claude-sonnet-4"},
        author="alice",
    )
    store.put("llm", "gpt", {"name": "gpt", "provider": "openai", "model": "gpt-4o"}, author="alice")
    for name in ("sonnet", "gpt"):
        _backdate(store, "llm", name, 40)
    store.put(
        "agent",
        "weather",
        {"name": "weather", "llm_config_id": "sonnet", "system_prompt": "Be brief."},
        author="alice",
    )
    _backdate(store, "agent", "weather", 10)
    store.put(
        "agent",
        "weather",
        {
            "name": "weather",
            "llm_config_id": "sonnet",
            "system_prompt": "Be brief and kind.",
            "max_iterations": 8,
        },
        author="bob",
    )
    store.put("agent", "triage", {"name": "triage", "llm_config_id": "sonnet"}, author="alice")
    store.put("agent", "travel", {"name": "travel", "llm_config_id": "gpt"}, author="alice")
    store.put("agent", "legacy", {"name": "legacy", "llm_config_id": "gpt"}, author="alice")
    for name in ("triage", "travel", "legacy"):
        _backdate(store, "agent", name, 20)
    store.delete("agent", "legacy", author="carol")
    store.put(
        "agent",
        "support",
        {"name": "support", "llm_config_id": "sonnet", "llm": {"model": "claude-opus-4"}},
        author="alice",
    )

    for name, (agent, days, messages) in CONVERSATIONS.items():
        store.append(
            "conversation", name, messages, meta={"agent_name": agent, "session_id": name.split("/")[1]}
        )
        if name == "support/s5":
            store.rewrite("conversation", name, COMPACTED)
        _backdate(store, "conversation", name, days)
    # weather/s1's first message came in before the previous day's midnight too.
    _backdate_version(store, "conversation", "weather/s1", 1, 2)


@pytest.fixture(scope="module")
def seeded(docstore_pool: Any, docstore_kinds: Any) -> Any:
    """One seeded store for the module (read-only queries), dropped at its end."""
    from docstore.testing import _drop, _new_schema

    store = DocStore(docstore_pool, schema=_new_schema(), kinds=docstore_kinds.copy())
    StorageManager(store).init_db()  # the core's tables and views, and the agents layer's
    try:
        seed(store)
        yield store
    finally:
        _drop(docstore_pool, store.schema)


@pytest.fixture(scope="module")
def analyst(docstore_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain psycopg connection, as an analyst has: no docstore adapters on it."""
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        yield conn


def run(store: DocStore, name: str, conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(for_schema(doc_blocks()[name], store.schema)).fetchall()


def day(store: DocStore, days_ago: int) -> date:
    with store.pool.connection() as conn:
        row = conn.execute(
            "SELECT (date_trunc('day', now()) - make_interval(days => %s) + interval '12 hours')::date",
            [days_ago],
        ).fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]


# --- the doc's queries ---------------------------------------------------------------

EXPECTED_QUERIES = {
    "read_only_role",
    "messages_per_agent_per_day",
    "most_used_tools",
    "turns_per_session",
    "sessions_per_day",
    "ended_in_tool_error",
    "agents_per_llm_model",
    "config_changes_this_week",
    "what_changed",
    "largest_conversations",
    "stale_sessions",
    "token_usage",
    "transcript",
    "conversations_calling_a_tool",
}


def test_every_sql_block_of_the_doc_is_named_and_tested() -> None:
    assert set(doc_blocks()) == EXPECTED_QUERIES
    assert len(EXPECTED_QUERIES - {"read_only_role"}) >= 10


def test_messages_per_agent_per_day(seeded: DocStore, analyst: Any) -> None:
    d = {n: day(seeded, n) for n in (0, 1, 2, 30)}
    assert run(seeded, "messages_per_agent_per_day", analyst) == [
        ("travel", d[30], 2),
        ("weather", d[2], 4),
        ("travel", d[1], 6),
        ("weather", d[1], 3),
        ("support", d[0], 2),
    ]


def test_most_used_tools(seeded: DocStore, analyst: Any) -> None:
    assert run(seeded, "most_used_tools", analyst) == [
        ("forecast", 2, 2),
        ("search_flights", 1, 1),
        ("search_hotels", 1, 1),
    ]


def test_turns_per_session(seeded: DocStore, analyst: Any) -> None:
    ((avg, p95, most),) = run(seeded, "turns_per_session", analyst)
    # Assistant messages per session: s1 2, s2 1, s3 2, s4 1, s5 1 (after its rewrite).
    assert (float(avg), p95, most) == (1.4, 2.0, 2)


def test_sessions_per_day(seeded: DocStore, analyst: Any) -> None:
    d = {n: day(seeded, n) for n in (0, 1, 2, 30)}
    assert run(seeded, "sessions_per_day", analyst) == [
        (d[30], 1, 1),
        (d[2], 1, 1),
        (d[1], 2, 2),
        (d[0], 1, 1),
    ]


def test_ended_in_tool_error(seeded: DocStore, analyst: Any) -> None:
    assert [(r[0], r[1], r[2]) for r in run(seeded, "ended_in_tool_error", analyst)] == [
        ("weather/s2", "weather", 3)
    ]


def test_agents_per_llm_model(seeded: DocStore, analyst: Any) -> None:
    assert run(seeded, "agents_per_llm_model", analyst) == [
        ("claude-sonnet-4", 2, ["triage", "weather"]),
        ("claude-opus-4", 1, ["support"]),
        ("gpt-4o", 1, ["travel"]),
    ]  # legacy is deleted


def test_config_changes_this_week(seeded: DocStore, analyst: Any) -> None:
    rows = run(seeded, "config_changes_this_week", analyst)
    assert rows[0][:5] == ("agent", "support", 1, "put", "alice")
    assert "llm" in rows[0][5] and "name" in rows[0][5]  # a first version: every key
    assert rows[1:] == [
        ("agent", "legacy", 2, "delete", "carol", []),
        ("agent", "weather", 2, "put", "bob", ["max_iterations", "system_prompt"]),
    ]


def test_what_changed(seeded: DocStore, analyst: Any) -> None:
    assert run(seeded, "what_changed", analyst) == [
        # Version 1 did not give max_iterations: a config stores the keys it was given.
        ("max_iterations", None, 8),
        ("system_prompt", "Be brief.", "Be brief and kind."),
    ]


def test_largest_conversations(seeded: DocStore, analyst: Any) -> None:
    rows = run(seeded, "largest_conversations", analyst)
    assert [r[:3] for r in rows] == [
        ("travel/s3", "travel", 6),
        ("weather/s1", "weather", 4),
        ("weather/s2", "weather", 3),
    ]
    assert all(r[3] > 0 for r in rows)


def test_stale_sessions(seeded: DocStore, analyst: Any) -> None:
    rows = run(seeded, "stale_sessions", analyst)
    assert [r[:3] for r in rows] == [("travel/s4", "travel", 2)]
    assert 29 <= rows[0][3].days <= 30


def test_token_usage(seeded: DocStore, analyst: Any) -> None:
    assert run(seeded, "token_usage", analyst) == [
        ("support", 50, 5, 1),
        ("travel", 500, 70, 2),
        ("weather", 330, 45, 3),
    ]


def test_transcript(seeded: DocStore, analyst: Any) -> None:
    assert run(seeded, "transcript", analyst) == [
        (1, "user", "Weather in Oslo?", []),
        (2, "assistant", "Checking.", ["forecast"]),
        (3, "user", "", []),
        (4, "assistant", "Sunny.", []),
    ]


def test_conversations_calling_a_tool(seeded: DocStore, analyst: Any) -> None:
    assert run(seeded, "conversations_calling_a_tool", analyst) == [("weather/s1",), ("weather/s2",)]


def test_the_filters_example_runs(
    docstore_factory: Any, docstore_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = docstore_factory(init=False).schema  # dropped after the test
    code = doc_blocks("python")["filters"]
    assert 'schema="docstore"' in code
    monkeypatch.setenv("DOCSTORE_URL", docstore_dsn)
    exec(compile(code.replace('schema="docstore"', f"schema={schema!r}"), str(DOC), "exec"), {})


def test_the_notebook_example_runs(
    seeded: DocStore, docstore_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = for_schema(doc_blocks("python")["notebook"], seeded.schema)
    monkeypatch.setenv("DOCSTORE_URL", docstore_dsn)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["rows"] == [("support", 2, 5), ("travel", 8, 70), ("weather", 7, 45)]
    assert "{'agent_name': 'weather', 'messages': 7, 'output_tokens': 45}" in capsys.readouterr().out


def test_the_pandas_example_runs(
    seeded: DocStore, docstore_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = for_schema(doc_blocks("python")["pandas"], seeded.schema)
    monkeypatch.setenv("DOCSTORE_URL", docstore_dsn)
    namespace: dict[str, Any] = {}
    try:
        exec(compile(code, str(DOC), "exec"), namespace)
    finally:
        # A notebook keeps its engine to the end; the test ends first, and its pool's
        # connection, left to the garbage collector, would warn (a ResourceWarning).
        if "engine" in namespace:
            namespace["engine"].dispose()
    assert len(namespace["df"]) == 7  # the weather agent's seeded messages
    assert int(namespace["per_day"].sum()) == 7
    assert isinstance(namespace["df"].item[0], dict)
