"""`docstore sync` and `docstore put` against the real framework: its shipped example
project (aurite's init_templates) syncs as its own ConfigManager loads it."""

from __future__ import annotations

import copy
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aurite_shapes import AURITE_MODELS, templates_folder
from conftest import Run

from docstore import DocStore
from docstore.agents import StorageManager

# Needs the agent framework aurite (docs/contributing.md, markers).
pytestmark = pytest.mark.framework

# The names the example project defines twice: (type, name, the file that wins, the other).
TWICE = [
    ("llm", "my_openai_gpt4_turbo", "example_multi_component.json", "llms/example_llms.json"),
    ("mcp_server", "planning_server", "example_multi_component.json", "mcp_servers/example_mcp_servers.json"),
]


@pytest.fixture
def store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    store = docstore_factory()
    StorageManager(store)  # the config kinds, for reading back with their models
    return store


def aurite_index(
    config_dir: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, dict[str, dict[str, Any]]]:
    """The component index aurite's own ConfigManager builds for a project that includes
    ``config_dir``, as a new host process would."""
    from aurite.lib.config.config_manager import ConfigManager

    project.mkdir()
    (project / ".aurite").write_text(f'[aurite]\ntype = "project"\ninclude_configs = ["{config_dir}"]\n')
    monkeypatch.delenv("AURITE_ENABLE_DB", raising=False)
    monkeypatch.setenv("HOME", str(project / "home"))  # no user-level ~/.aurite
    index: dict[str, dict[str, dict[str, Any]]] = ConfigManager(start_dir=project).get_all_configs()
    return index


def aurite_reads(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    clean = {k: v for k, v in copy.deepcopy(data).items() if not k.startswith("_")}
    dumped: dict[str, Any] = AURITE_MODELS[kind](**clean).model_dump()
    return dumped


def test_the_framework_s_example_project_syncs_as_its_config_manager_loads_it(
    run: Run, store: DocStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = templates_folder()
    code, out, err = run("sync", str(folder))
    assert code == 0, err
    index = aurite_index(folder, tmp_path / "project", monkeypatch)
    # The same components of the same types, and for a name defined twice the same winner.
    stored = {kind: {d.name: d.data for d in store.list(kind)} for kind in AURITE_MODELS}
    assert {k: sorted(v) for k, v in stored.items() if v} == {k: sorted(v) for k, v in index.items()}
    for kind, components in index.items():
        for name, entry in components.items():
            back = stored[kind][name].model_dump(mode="json", by_alias=True)
            assert aurite_reads(kind, back) == aurite_reads(kind, entry), (kind, name)
    for kind, name, winner, _other in TWICE:
        assert index[kind][name]["_source_file"] == str(folder / winner)
    # Every component is listed by name as created; each name defined twice is a warning
    # naming both files.
    for kind, components in index.items():
        for name in components:
            assert f"created {kind} {name!r}\n" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(TWICE)
    for (kind, name, winner, other), line in zip(TWICE, sorted(warnings), strict=True):
        assert f"{kind} {name!r}" in line
        assert str(folder / winner) in line and str(folder / other) in line
    # Syncing it again writes nothing and lists nothing as created.
    code, out, err = run("sync", str(folder), "--json")
    result = json.loads(out)
    assert code == 0 and result["written"] == [] and result["created"] == []
    assert len(result["warnings"]) == len(TWICE)
    assert sum(len(c) for c in index.values()) == len(result["unchanged"])


def test_the_framework_s_config_manager_index_syncs_with_every_key_it_added(
    store: DocStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = aurite_index(templates_folder(), tmp_path / "project", monkeypatch)
    for kind, components in index.items():
        for name, entry in components.items():
            back = store.put(kind, name, copy.deepcopy(entry)).data.model_dump(mode="json", by_alias=True)
            assert {k: v for k, v in back.items() if k.startswith("_")} == {
                k: v for k, v in entry.items() if k.startswith("_")
            }
            assert set(back) == set(entry)
            assert aurite_reads(kind, back) == aurite_reads(kind, entry)


def test_sync_lists_what_it_created_and_updated(run: Run, tmp_path: Path) -> None:
    file = tmp_path / "agents.json"
    file.write_text(json.dumps([{"type": "agent", "name": "a"}, {"type": "agent", "name": "b"}]))
    code, out, _ = run("sync", str(file))
    assert code == 0 and "created agent 'a'\ncreated agent 'b'\n" in out
    file.write_text(
        json.dumps(
            [
                {"type": "agent", "name": "a", "max_iterations": 3},
                {"type": "agent", "name": "b"},
                {"type": "agent", "name": "c"},
            ]
        )
    )
    code, out, _ = run("sync", str(file))
    assert code == 0 and "updated agent 'a' to version 2\n" in out
    assert "created agent 'c'\n" in out and "'b'" not in out
    code, out, _ = run("sync", str(file), "--json")
    assert (json.loads(out)["created"], json.loads(out)["updated"]) == ([], [])


def test_several_paths_keep_the_first_definition(run: Run, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    first.write_text(json.dumps([{"type": "agent", "name": "a", "system_prompt": "first"}]))
    second = tmp_path / "second"
    second.mkdir()
    (second / "x.yaml").write_text(
        "- {type: agent, name: a, system_prompt: second}\n- {type: agent, name: b}\n"
    )
    code, out, err = run("sync", str(first), str(second))
    assert code == 0 and "created agent 'b'" in out
    assert f"warning: {second / 'x.yaml'}: agent 'a'" in err and str(first) in err
    code, out, _ = run("get", "agent", "a")
    assert json.loads(out)["system_prompt"] == "first"


def test_broken_entries_are_one_error_per_line_and_nothing_is_written_unless_partial(
    run: Run, tmp_path: Path
) -> None:
    file = tmp_path / "broken.json"
    file.write_text(
        json.dumps(
            [
                {"type": "agent", "name": "bad_agent", "max_iterations": "many"},
                {"type": "llm", "name": "bad_llm", "provider": "openai"},
                {"type": "robot", "name": "bad_type"},
                {"type": "agent", "name": "good"},
            ]
        )
    )
    code, out, err = run("sync", str(file))
    lines = err.splitlines()
    assert code == 1 and out == ""
    assert lines[0] == (
        "docstore: error: 3 problem(s) in config files (nothing was written; "
        "--partial stores the valid entries):"
    )
    assert lines[1:] == [
        f"  {file}: agent 'bad_agent': max_iterations: Input should be a valid integer, "
        "unable to parse string as an integer",
        f"  {file}: llm 'bad_llm': model: Field required",
        f"  {file}: entry 'bad_type': unknown type 'robot'; expected one of agent, llm, "
        "mcp_server, linear_workflow, graph_workflow, custom_workflow, evaluation, security, "
        "simple_workflow, client, llm_config",
    ]
    assert run("get", "agent", "good")[0] == 1
    code, out, err = run("sync", str(file), "--partial")
    assert code == 0 and "created agent 'good'" in out
    assert [line for line in err.splitlines() if line.startswith("skipped: ")] == [
        f"skipped: {line.strip()}" for line in lines[1:]
    ]


def test_put_takes_an_entry_carrying_the_framework_s_type_tag(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = {
        "type": "agent",
        "name": "Weather Agent",
        "llm_config_id": "fast",
        "_source_file": "/srv/p/agents.json",
    }
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(entry)))
    code, out, err = run("put", "agent", "Weather Agent", "-")
    assert (code, out) == (0, "agent 'Weather Agent': version 1\n"), err
    assert json.loads(run("get", "agent", "Weather Agent")[1]) == entry
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({**entry, "type": "llm"})))
    code, _, err = run("put", "agent", "Weather Agent", "-")
    assert code == 1 and "type" in err and "'agent'" in err


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace of two projects, each defining a name the workspace's shared configs
    and the other project define too, as `aurite init` lays them out."""
    monkeypatch.delenv("AURITE_ENABLE_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = tmp_path / "ws"
    root.mkdir()
    (root / ".aurite").write_text(
        '[aurite]\ntype = "workspace"\ninclude_configs = ["shared"]\nprojects = ["p1", "p2"]\n'
    )
    for project in ("p1", "p2"):
        (root / project).mkdir()
        (root / project / ".aurite").write_text('[aurite]\ntype = "project"\ninclude_configs = ["config"]\n')
        _write(
            root / project / "config" / "agents.json",
            [
                {"type": "agent", "name": "everywhere", "system_prompt": project},
                {"type": "agent", "name": f"only_{project}"},
            ],
        )
        _write(
            root / project / "config" / "servers.json",
            [
                {
                    "type": "mcp_server",
                    "name": "files",
                    "server_path": "servers/files.py",
                    "capabilities": ["tools"],
                    "description": project,
                }
            ],
        )
    _write(
        root / "shared" / "agents.json",
        [
            {"type": "agent", "name": "everywhere", "system_prompt": "shared"},
            {"type": "agent", "name": "only_shared"},
        ],
    )
    (root / "node_modules").mkdir()  # not an include: never read
    _write(root / "node_modules" / "package.json", [{"type": "agent", "name": "stray"}])
    return root


@pytest.mark.parametrize("start", ["ws/p1", "ws/p2", "ws"])
def test_a_project_or_workspace_syncs_its_sources_in_the_framework_s_order(
    run: Run, store: DocStore, tmp_path: Path, workspace: Path, start: str
) -> None:
    from aurite.lib.config.config_manager import ConfigManager

    index = ConfigManager(start_dir=tmp_path / start).get_all_configs()
    code, _out, err = run("sync", str(tmp_path / start))
    assert code == 0, err
    stored = {
        kind: {d.name: d.data.model_dump(mode="json", by_alias=True) for d in store.list(kind)}
        for kind in AURITE_MODELS
    }
    assert {k: v for k, v in stored.items() if v} == index
    assert "stray" not in err + _out


def test_the_example_project_in_an_aurite_project_stores_what_its_index_holds(
    run: Run, store: DocStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    index = aurite_index(templates_folder(), project, monkeypatch)
    code, _out, err = run("sync", str(project))
    assert code == 0, err
    for kind, components in index.items():
        for name, entry in components.items():
            back = store.get(kind, name).data.model_dump(mode="json", by_alias=True)
            # Every key the framework's index holds, its own _ keys included; values as
            # its models read them (the file's "15.0" is stored as 15.0).
            assert set(back) == set(entry)
            assert {k: v for k, v in back.items() if k.startswith("_")} == {
                k: v for k, v in entry.items() if k.startswith("_")
            }
            assert aurite_reads(kind, back) == aurite_reads(kind, entry)
