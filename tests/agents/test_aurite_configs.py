"""Every config the real framework (aurite 0.4.2) accepts, docstore accepts and gives back
so that the framework's own models read the same thing; what they refuse, docstore refuses
with the file, the entry and the reason. The oracle is aurite's models themselves."""

from __future__ import annotations

import copy
import json
from pathlib import Path, PurePath
from typing import Any

import agent_fixtures
import pytest
from aurite_shapes import (
    AURITE_MODELS,
    CURRENT,
    INDEX_KEYS,
    OLD_PROJECT,
    OLDER,
    REFUSED,
    REFUSED_FIELD,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from docstore import DocStore
from docstore.agents import CONFIG_KINDS, CONFIG_MODELS, StorageManager, load_configs, upgrade_config

# Needs the agent framework aurite (docs/contributing.md, markers).
pytestmark = pytest.mark.framework

db = agent_fixtures.db
manager = agent_fixtures.manager

CASES = [
    pytest.param(kind, config, id=f"{kind}:{config['name']}")
    for kind, configs in CURRENT.items()
    for config in configs
]


def _jsonable(value: Any) -> Any:
    """``value`` as it would be written to a JSON file (a Path as its text)."""
    return json.loads(
        json.dumps(
            value, default=lambda v: str(v) if isinstance(v, PurePath) else TypeError(type(v).__name__)
        )
    )


def aurite_reads(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the framework reads from ``data``: its model's dump, validated as its
    ConfigManager validates (without the keys it adds itself)."""
    clean = {k: v for k, v in copy.deepcopy(data).items() if not k.startswith("_")}
    dumped: dict[str, Any] = AURITE_MODELS[kind](**clean).model_dump()
    # The framework makes up a random id for a test case without one, on every read.
    for case, source in zip(dumped.get("test_cases") or [], data.get("test_cases") or [], strict=True):
        if "id" not in source:
            case.pop("id")
    return dumped


def test_every_component_type_of_the_framework_is_a_config_kind() -> None:
    assert set(CONFIG_KINDS) == set(AURITE_MODELS) == set(CURRENT) == set(REFUSED)


@pytest.mark.parametrize(("kind", "config"), CASES)
def test_a_config_the_framework_accepts_is_stored_and_read_back_as_the_framework_reads_it(
    db: DocStore, kind: str, config: dict[str, Any]
) -> None:
    expected = aurite_reads(kind, config)
    db.put(kind, config["name"], copy.deepcopy(config))
    stored = db.get(kind, config["name"]).data
    back = stored.model_dump(mode="json", by_alias=True)
    assert aurite_reads(kind, back) == expected
    # Nothing dropped, nothing added: every key given (unknown ones, the ConfigManager's
    # own, the type tag) comes back, with its value as JSON holds it.
    assert set(back) == set(config)
    plain = _jsonable(config)
    for key, value in back.items():
        if key.startswith("_") or key not in type(stored).model_fields:
            assert value == plain[key], key


@pytest.mark.parametrize("kind", sorted(CURRENT))
def test_config_files_of_every_type_sync_and_load_back_as_the_framework_reads_them(
    manager: Any, tmp_path: Path, kind: str
) -> None:
    (tmp_path / f"{kind}.json").write_text(json.dumps(_jsonable(CURRENT[kind])))
    report = manager.sync_path(tmp_path)
    assert report.applied and report.ok and not report.warnings, str(report)
    assert {(k, n) for k, n, _v in report.written} == {(kind, c["name"]) for c in CURRENT[kind]}
    loaded = manager.load_all_configs()[kind]
    for config in CURRENT[kind]:
        back = loaded[config["name"]].model_dump(mode="json", by_alias=True)
        assert aurite_reads(kind, back) == aurite_reads(kind, config)
        assert {k: v for k, v in back.items() if k.startswith("_")} == {
            k: v for k, v in config.items() if k.startswith("_")
        }
    assert manager.sync_path(tmp_path).written == ()


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_a_config_the_framework_refuses_is_refused_naming_file_entry_and_field(
    tmp_path: Path, kind: str
) -> None:
    bad = REFUSED[kind]
    with pytest.raises(ValidationError):
        AURITE_MODELS[kind](**copy.deepcopy(bad))
    file = tmp_path / "components.json"
    file.write_text(json.dumps([bad, CURRENT[kind][0]]))
    loaded = load_configs(file)
    [problem] = loaded.problems
    assert (problem.file, problem.kind, problem.name) == (file, kind, "bad")
    assert REFUSED_FIELD[kind] in problem.message
    assert str(file) in str(problem) and "'bad'" in str(problem)
    assert list(loaded.configs[kind]) == [CURRENT[kind][0]["name"]]


@pytest.mark.parametrize(
    ("kind", "old", "upgraded"),
    [pytest.param(kind, old, upgraded, id=f"{kind}:{old['name']}") for kind, old, upgraded in OLDER],
)
def test_spring_2025_shapes_the_framework_still_indexes_load_upgraded(
    tmp_path: Path, kind: str, old: dict[str, Any], upgraded: dict[str, Any]
) -> None:
    AURITE_MODELS[kind](**copy.deepcopy(old))  # the framework's loader takes it too
    file = tmp_path / "old.json"
    file.write_text(json.dumps([old]))
    loaded = load_configs(file, strict=True)
    back = loaded.configs[kind][old["name"]].model_dump(mode="json", by_alias=True)
    # The framework reads the same, but for what the upgrade moved where it now lives.
    moved = {"client_ids", "model", "temperature", "max_tokens"} if kind == "agent" else set()
    target = {k: v for k, v in old.items() if k not in moved} | upgraded
    assert aurite_reads(kind, back) == aurite_reads(kind, target)
    for key, value in upgraded.items():
        assert back[key] == value
    # Old keys the upgrade does not move stay, as unknown keys: nothing is dropped.
    assert set(old) - moved <= set(back)


def test_an_aurite_0_2_project_file_loads_every_entry(tmp_path: Path) -> None:
    file = tmp_path / "aurite.json"
    file.write_text(json.dumps(OLD_PROJECT))
    loaded = load_configs(file, strict=True)
    assert sorted(loaded.mcp_servers) == ["planning_server", "weather_server"]
    assert loaded.mcp_servers["planning_server"].model_dump()["routing_weight"] == 0.5
    assert loaded.llms["my_openai_gpt4_turbo"].model == "gpt-4-turbo-preview"
    agent = loaded.agents["Weather Agent"]
    assert agent.llm is not None and agent.llm.temperature == 0.1
    assert loaded.linear_workflows["Weather Planning Workflow"].steps == ["Weather Agent"]
    assert loaded.custom_workflows["Example"].class_name == "ExampleCustomWorkflow"
    for kind, configs in loaded.configs.items():
        for config in configs.values():
            AURITE_MODELS[kind](**config.model_dump(mode="json", by_alias=True))


def test_the_storage_manager_takes_a_dump_of_the_framework_s_own_model(db: DocStore) -> None:
    storage = StorageManager(db)
    # Path objects, every default filled in, transport_type inferred: as the framework
    # holds a config in memory.
    theirs = AURITE_MODELS["mcp_server"](**copy.deepcopy(CURRENT["mcp_server"][1]))
    doc = storage.sync_mcp_server_config(theirs.model_dump())
    assert aurite_reads("mcp_server", doc.data.model_dump(mode="json")) == aurite_reads(
        "mcp_server", CURRENT["mcp_server"][1]
    )


def test_index_keys_are_kept_on_every_kind(db: DocStore) -> None:
    def stored(kind: str, config: dict[str, Any]) -> dict[str, Any]:
        dumped: dict[str, Any] = db.put(kind, config["name"], config).data.model_dump()
        return dumped

    for kind, configs in CURRENT.items():
        config = {**configs[0], **INDEX_KEYS}
        assert {k: v for k, v in stored(kind, config).items() if k.startswith("_")} == INDEX_KEYS


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_KEYS = st.text(min_size=1, max_size=12).map(lambda k: k.replace("\x00", ""))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.parametrize("kind", sorted(CURRENT))
def test_any_variation_the_framework_accepts_reads_back_as_it_reads_it(
    kind: str, data: st.DataObject
) -> None:
    """Drop optional keys from the fixtures, add unknown keys of any name and JSON value:
    whatever the framework's model still takes, docstore stores and gives back as the
    framework reads it, unknown keys and all."""
    base = data.draw(st.sampled_from(CURRENT[kind]))
    required = {"name"} | {n for n, f in AURITE_MODELS[kind].model_fields.items() if f.is_required()}
    optional = sorted(set(base) - required)
    kept = data.draw(st.lists(st.sampled_from(optional), unique=True) if optional else st.just([]))
    extras = data.draw(st.dictionaries(_KEYS, _JSON, max_size=4))
    config = {k: v for k, v in base.items() if k in required or k in kept}
    config.update({k: v for k, v in extras.items() if k not in base})
    try:
        expected = aurite_reads(kind, config)
    except ValidationError:
        assume(False)
    adapter = CONFIG_MODELS[kind]
    model = adapter.model_validate(upgrade_config(kind, copy.deepcopy(config)))
    back = json.loads(adapter.__pydantic_serializer__.to_json(model, by_alias=True))
    assert aurite_reads(kind, back) == expected
    moved = {"model", "temperature", "max_tokens", "client_ids"} if kind == "agent" else set()
    for key, value in extras.items():
        if key not in base and key not in moved and key not in type(model).model_fields:
            assert back[key] == _jsonable(value), key
