"""Loading the framework's project file, component files and directories of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from docstore.agents import (
    AgentConfig,
    ConfigFileError,
    LinearWorkflowConfig,
    load_configs,
)

PROJECT: dict[str, Any] = {
    "name": "demo project",
    "clients": [{"client_id": "weather", "server_path": "servers/weather.py", "capabilities": ["tools"]}],
    "llms": [{"llm_id": "fast", "provider": "anthropic", "model_name": "claude-haiku"}],
    "agents": [
        {
            "name": "forecaster",
            "client_ids": ["weather"],
            "llm_config_id": "fast",
            "include_history": "True",
        }
    ],
    "simple_workflows": [{"name": "daily", "steps": ["forecaster"]}],
    "custom_workflows": [{"name": "nightly", "module_path": "flows/nightly.py", "class_name": "Nightly"}],
}


def _write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_project_file_loads_every_kind_through_the_upgraders(tmp_path: Path) -> None:
    loaded = load_configs(_write_json(tmp_path / "aurite_config.json", PROJECT))
    assert loaded.ok, loaded.problems
    assert loaded.mcp_servers["weather"].server_path == "servers/weather.py"
    assert loaded.llms["fast"].model == "claude-haiku"
    agent = loaded.agents["forecaster"]
    assert agent.mcp_servers == ["weather"]
    assert agent.include_history is True
    assert loaded.linear_workflows["daily"].steps == ["forecaster"]
    assert loaded.custom_workflows["nightly"].class_name == "Nightly"
    assert loaded.graph_workflows == {}
    assert loaded.sources[("agent", "forecaster")] == tmp_path / "aurite_config.json"


def test_project_file_in_yaml_loads_the_same(tmp_path: Path) -> None:
    from_json = load_configs(_write_json(tmp_path / "p.json", PROJECT))
    from_yaml = load_configs(_write_yaml(tmp_path / "p.yaml", PROJECT))
    assert from_yaml.configs == from_json.configs


def test_component_file_list_of_typed_entries(tmp_path: Path) -> None:
    entries = [
        {"type": "agent", "name": "a", "mcp_servers": ["s"]},
        {"type": "llm", "name": "l", "provider": "openai", "model": "gpt", "seed": 7},
        {"type": "mcp_server", "name": "s", "http_endpoint": "https://x/mcp", "capabilities": []},
        {"type": "linear_workflow", "name": "w", "steps": [{"name": "a", "type": "agent"}]},
        {
            "type": "graph_workflow",
            "name": "g",
            "nodes": [{"node_id": "1", "name": "a", "type": "agent"}],
            "edges": [{"from": "1", "to": "1"}],
        },
        {"type": "custom_workflow", "name": "c", "module_path": "m.py", "class_name": "C"},
        {"type": "simple_workflow", "name": "old", "steps": ["a"]},
    ]
    loaded = load_configs(_write_yaml(tmp_path / "components.yml", entries))
    assert loaded.ok, loaded.problems
    assert {kind: sorted(names) for kind, names in loaded.configs.items()} == {
        "agent": ["a"],
        "llm": ["l"],
        "mcp_server": ["s"],
        "linear_workflow": ["old", "w"],
        "graph_workflow": ["g"],
        "custom_workflow": ["c"],
        "evaluation": [],
        "security": [],
    }
    assert loaded.llms["l"].model_dump()["seed"] == 7
    assert loaded.graph_workflows["g"].edges[0].from_ == "1"


def test_component_file_single_entry_and_name_mapping(tmp_path: Path) -> None:
    _write_json(tmp_path / "one.json", {"type": "agent", "name": "solo"})
    _write_yaml(
        tmp_path / "many.yaml",
        {"first": {"type": "agent"}, "second": {"type": "agent", "max_iterations": 3}},
    )
    loaded = load_configs(tmp_path)
    assert loaded.ok, loaded.problems
    assert sorted(loaded.agents) == ["first", "second", "solo"]
    assert loaded.agents["second"].max_iterations == 3


def test_directory_is_read_recursively_json_then_yaml_then_yml_skipping_other_files(
    tmp_path: Path,
) -> None:
    _write_yaml(tmp_path / "a" / "deep" / "agents.yaml", [{"type": "agent", "name": "from_yaml"}])
    _write_json(tmp_path / "b" / "agents.json", [{"type": "agent", "name": "from_json"}])
    _write_yaml(tmp_path / "agents.yml", [{"type": "agent", "name": "from_yml"}])
    _write_json(tmp_path / "project.json", {"llms": [PROJECT["llms"][0]]})
    (tmp_path / "notes.txt").write_text("not config", encoding="utf-8")
    loaded = load_configs(tmp_path)
    assert loaded.ok, loaded.problems
    assert list(loaded.agents) == ["from_json", "from_yaml", "from_yml"]
    assert list(loaded.llms) == ["fast"]


def test_several_paths_load_first_path_first(tmp_path: Path) -> None:
    first = _write_json(tmp_path / "p" / "a.json", [{"type": "agent", "name": "x", "auto": True}])
    second = _write_json(
        tmp_path / "q" / "a.json", [{"type": "agent", "name": "x"}, {"type": "agent", "name": "y"}]
    )
    loaded = load_configs(second.parent, first, strict=True)
    assert loaded.sources[("agent", "x")] == second
    loaded = load_configs(first, second.parent)
    assert loaded.agents["x"].auto is True and sorted(loaded.agents) == ["x", "y"]
    [warning] = loaded.warnings
    assert warning.file == second and str(first) in warning.message


def test_broken_entry_is_reported_with_file_and_name_and_the_rest_loads(tmp_path: Path) -> None:
    file = _write_json(
        tmp_path / "servers.json",
        [
            {
                "type": "mcp_server",
                "name": "both",
                "server_path": "s.py",
                "http_endpoint": "http://h",
                "capabilities": [],
            },
            {"type": "mcp_server", "name": "good", "server_path": "s.py", "capabilities": []},
        ],
    )
    loaded = load_configs(file)
    assert list(loaded.mcp_servers) == ["good"]
    [problem] = loaded.problems
    assert (problem.file, problem.name, problem.kind) == (file, "both", "mcp_server")
    assert "takes http_endpoint, not server_path" in problem.message
    assert str(file) in str(problem) and "'both'" in str(problem)
    assert problem.entry["name"] == "both"


def test_broken_entry_in_old_shape_is_named_by_its_old_name_key(tmp_path: Path) -> None:
    file = _write_json(tmp_path / "p.json", {"llms": [{"llm_id": "half", "provider": "x"}]})
    [problem] = load_configs(file).problems
    assert problem.name == "half"
    assert "model" in problem.message


def test_strict_raises_listing_every_problem(tmp_path: Path) -> None:
    _write_json(tmp_path / "a.json", [{"type": "agent"}, {"type": "robot", "name": "r"}])
    with pytest.raises(ConfigFileError) as exc:
        load_configs(tmp_path, strict=True)
    assert len(exc.value.problems) == 2
    assert "unknown type 'robot'" in str(exc.value)
    assert "a.json" in str(exc.value)


def test_unreadable_file_is_a_problem_without_an_entry_name(tmp_path: Path) -> None:
    _write_json(tmp_path / "good.json", [{"type": "agent", "name": "ok"}])
    (tmp_path / "bad.yaml").write_text("agents: [unclosed", encoding="utf-8")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    loaded = load_configs(tmp_path)
    assert list(loaded.agents) == ["ok"]
    assert {(p.file.name, p.name) for p in loaded.problems} == {
        ("bad.json", None),
        ("bad.yaml", None),
    }
    assert all("cannot be read" in p.message for p in loaded.problems)


def test_entry_without_type_in_a_component_file_is_reported(tmp_path: Path) -> None:
    file = _write_json(tmp_path / "x.json", [{"name": "mystery"}, "just a string"])
    problems = load_configs(file).problems
    assert [(p.name, p.message) for p in problems] == [
        ("mystery", "has no 'type' saying what kind of config it is"),
        (None, "an entry must be an object, got str"),
    ]


def test_typed_entry_in_the_wrong_project_list_is_reported(tmp_path: Path) -> None:
    file = _write_json(tmp_path / "p.json", {"agents": [{"type": "llm", "name": "x"}]})
    [problem] = load_configs(file).problems
    assert problem.name == "x"
    assert "does not belong in a list of agent entries" in problem.message


def test_project_key_that_is_not_a_list_is_reported(tmp_path: Path) -> None:
    file = _write_json(tmp_path / "p.json", {"agents": {"name": "a"}})
    [problem] = load_configs(file).problems
    assert "'agents' must be a list of entries" in problem.message


def test_duplicate_name_keeps_the_first_and_reports_the_second(tmp_path: Path) -> None:
    _write_json(tmp_path / "1.json", [{"type": "agent", "name": "twin", "max_iterations": 1}])
    _write_json(tmp_path / "2.json", [{"type": "agent", "name": "twin", "max_iterations": 2}])
    loaded = load_configs(tmp_path / "1.json", tmp_path / "2.json")
    assert loaded.agents["twin"].max_iterations == 1
    assert loaded.ok
    [warning] = loaded.warnings
    assert warning.file == tmp_path / "2.json"
    assert "the first definition, in" in warning.message and "1.json" in warning.message


def test_same_name_in_different_kinds_is_no_conflict(tmp_path: Path) -> None:
    file = _write_json(
        tmp_path / "x.json",
        [{"type": "agent", "name": "x"}, {"type": "linear_workflow", "name": "x", "steps": []}],
    )
    loaded = load_configs(file)
    assert loaded.ok
    assert isinstance(loaded.agents["x"], AgentConfig)
    assert isinstance(loaded.linear_workflows["x"], LinearWorkflowConfig)


def test_empty_yaml_file_holds_nothing_and_is_no_problem(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    loaded = load_configs(tmp_path)
    assert loaded.ok
    assert all(not names for names in loaded.configs.values())


def test_missing_path_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_configs(tmp_path / "nope")


def test_raise_for_problems_is_silent_when_all_is_well(tmp_path: Path) -> None:
    load_configs(_write_json(tmp_path / "p.json", PROJECT)).raise_for_problems()
