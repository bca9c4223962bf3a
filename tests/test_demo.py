"""`docstore demo` against the test server."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from docstore import DocStore
from docstore.cli import main


def test_demo_syncs_converses_edits_and_queries(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    schema = docstore_factory().schema
    capfd.readouterr()
    assert main(["--dsn", docstore_dsn, "--schema", schema, "--json", "demo"]) == 0
    report = json.loads(capfd.readouterr().out)
    assert report["sync"]["agent"] == {"written": 2, "unchanged": 0}
    assert report["resync_written"] == 0
    assert [(c["name"], c["messages"]) for c in report["conversations"]] == [("s1", 8), ("s2", 4), ("s3", 6)]
    assert report["edit"]["versions"] == [1, 2]
    assert {c["path"] for c in report["edit"]["changes"]} == {
        "system_prompt",
        "mcp_servers[1]",
        "max_iterations",
    }
    assert report["analytics"]["tool_calls"] == [["get_forecast", 3], ["find_museums", 1], ["get_wind", 1]]
    assert report["analytics"]["agents"] == [
        ["planner", "openai", "gpt-4o", 1, 1],
        ["weather", "anthropic", "claude-haiku", 2, 2],
    ]
    assert ["weather", "user", 6] in report["analytics"]["messages_by_agent"]

    # A schema given explicitly is never reset: the demo wants it empty.
    assert main(["--dsn", docstore_dsn, "--schema", schema, "demo"]) == 1
    assert "already holds" in capfd.readouterr().err


def test_demo_prints_readable_tables(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    schema = docstore_factory().schema
    capfd.readouterr()
    assert main(["--dsn", docstore_dsn, "--schema", schema, "demo"]) == 0
    out = capfd.readouterr().out
    for text in (
        "Sync the example agent configs",
        "Messages per agent and role",
        "+ max_iterations: 20",
        "get_forecast",
        "claude-haiku",
    ):
        assert text in out
