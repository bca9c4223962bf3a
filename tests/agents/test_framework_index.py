"""docstore as aurite 0.4.2's config storage: sync_index_to_db / load_index_from_db /
delete_component with the component index aurite's own ConfigManager builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import agent_fixtures
import aurite
import pytest
from agent_fixtures import count_rows
from aurite.lib.config.config_manager import ConfigManager

from docstore import DocStore, DocumentInvalid

# Needs the agent framework aurite (docs/contributing.md, markers).
pytestmark = pytest.mark.framework

db = agent_fixtures.db
manager = agent_fixtures.manager

TEMPLATES = Path(aurite.__file__).parent / "lib" / "init_templates" / "config"


def template_index(tmp_path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The component index aurite's ConfigManager builds for a project holding the
    framework's shipped example configs (with its _source_file, _context_path, ...)."""
    project = tmp_path / "project"
    shutil.copytree(TEMPLATES, project / "config")
    (project / ".aurite").write_text('[aurite]\ntype = "project"\ninclude_configs = ["config"]\n')
    index = ConfigManager(start_dir=project).get_all_configs()
    assert {
        "agent",
        "llm",
        "mcp_server",
        "linear_workflow",
        "graph_workflow",
        "custom_workflow",
        "security",
    } <= set(index)
    return index


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def test_the_framework_index_loads_back_as_it_was_synced(manager: Any, db: DocStore, tmp_path: Path) -> None:
    index = template_index(tmp_path)
    report = manager.sync_index_to_db(index)
    total = sum(len(group) for group in index.values())
    assert len(report.written) == total
    loaded = manager.load_index_from_db()
    expected = as_json(index)
    # The one value the framework's own model coerces: its template writes a timeout as a
    # string, and the model (aurite's as docstore's) reads it as a number.
    assert expected["mcp_server"]["weather_server"]["timeout"] == "15.0"
    expected["mcp_server"]["weather_server"]["timeout"] = 15.0
    assert loaded == expected
    assert loaded["agent"]["Weather Agent"]["_source_file"].endswith(".json")
    # Re-syncing the unchanged index writes nothing.
    versions = count_rows(db, "versions", "agent")
    again = manager.sync_index_to_db(index)
    assert (again.written, len(again.unchanged)) == ((), total)
    assert count_rows(db, "versions", "agent") == versions


def test_a_changed_config_writes_one_version_and_a_deleted_one_goes(manager: Any, db: DocStore) -> None:
    index: dict[str, dict[str, dict[str, Any]]] = {
        "llm": {
            "fast": {
                "type": "llm",
                "name": "fast",
                "provider": "anthropic",
                "model": "claude-haiku",
                "api_key": None,
                "_source_file": "in-memory",
            }
        },
        "agent": {
            "weather": {
                "type": "agent",
                "name": "weather",
                "llm_config_id": "fast",
                "mcp_servers": [],
                "exclude_components": None,
                "_context_path": Path("/srv/project"),
                "future_key": {"x": 1},
            }
        },
        "linear_workflow": {
            "wf": {"type": "linear_workflow", "name": "wf", "steps": [{"name": "weather", "type": "agent"}]}
        },
    }
    manager.sync_index_to_db(index)
    loaded = manager.load_index_from_db()
    assert loaded == as_json(index)
    index["agent"]["weather"]["system_prompt"] = "Be brief."
    report = manager.sync_index_to_db(index)
    assert report.written == (("agent", "weather", 2),)
    assert [v.version for v in db.versions("agent", "weather")] == [1, 2]
    assert manager.load_index_from_db()["agent"]["weather"]["system_prompt"] == "Be brief."
    assert manager.delete_component("weather") is True
    assert manager.delete_component("weather") is False
    assert "agent" not in manager.load_index_from_db()


def test_an_invalid_index_writes_nothing_and_names_the_entry(manager: Any, db: DocStore) -> None:
    index = {
        "llm": {"fast": {"name": "fast", "provider": "anthropic", "model": "m"}},
        "agent": {"bad": {"name": "bad", "mcp_servers": "not-a-list"}},
    }
    with pytest.raises(DocumentInvalid, match="bad"):
        manager.sync_index_to_db(index)
    with pytest.raises(DocumentInvalid, match="unknown component type 'gadget'"):
        manager.sync_index_to_db({"gadget": {}})
    assert count_rows(db, "documents", "llm") == 0
