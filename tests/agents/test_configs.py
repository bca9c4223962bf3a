"""Config models of the agent framework: fields, defaults, validation and upgraders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from docstore.agents import (
    CONFIG_KINDS,
    CONFIG_MODELS,
    AgentConfig,
    CustomWorkflowConfig,
    EvaluationConfig,
    GraphWorkflowConfig,
    LinearWorkflowConfig,
    LLMConfig,
    MCPServerConfig,
    SecurityConfig,
    WorkflowConfig,
    resolve_config_kind,
    upgrade_config,
)
from docstore.agents.configs import GraphEdge, WorkflowStep
from docstore.kinds import Kind


def _error_text(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return str(exc.value)


def _missing_fields(model: type[BaseModel], data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    return {str(e["loc"][0]) for e in exc.value.errors() if e["type"] == "missing"}


# --- agent ------------------------------------------------------------------------


def test_agent_requires_only_a_name() -> None:
    assert _missing_fields(AgentConfig, {}) == {"name"}


def test_agent_defaults() -> None:
    agent = AgentConfig(name="helper")
    assert agent.mcp_servers == []
    assert agent.auto is False
    assert agent.max_iterations == 50
    assert agent.include_history is None
    assert agent.include_logging is None
    assert agent.llm is None
    assert agent.llm_config_id is None
    assert agent.config_validation_schema is None
    assert agent.exclude_components is None


def test_agent_llm_overrides_are_typed() -> None:
    agent = AgentConfig.model_validate(
        {"name": "a", "llm": {"model": "m", "temperature": 0.2, "max_tokens": 100}}
    )
    assert agent.llm is not None
    assert (agent.llm.model, agent.llm.temperature, agent.llm.max_tokens) == ("m", 0.2, 100)
    with pytest.raises(ValidationError, match=r"llm\.max_tokens"):
        AgentConfig.model_validate({"name": "a", "llm": {"max_tokens": "many"}})


def test_agent_keeps_unknown_keys_and_provider_extras_in_its_llm() -> None:
    data = {
        "name": "a",
        "type": "agent",
        "_source_file": "/p/agents.json",
        "future": [1],
        "llm": {"temperature": 0, "api_key": "sk-x", "top_k": 3},
    }
    agent = AgentConfig.model_validate(data)
    assert agent.model_dump() == data
    assert AgentConfig.model_validate_json(agent.model_dump_json()) == agent


def test_agent_dumps_only_the_keys_it_was_given() -> None:
    assert AgentConfig(name="a").model_dump() == {"name": "a"}
    assert AgentConfig(name="a").max_iterations == 50
    given = {"name": "a", "description": None, "exclude_components": None}
    assert AgentConfig.model_validate(given).model_dump() == given


def test_agent_refuses_an_empty_name_and_another_type() -> None:
    with pytest.raises(ValidationError, match="name"):
        AgentConfig(name="")
    with pytest.raises(ValidationError, match="type"):
        AgentConfig.model_validate({"name": "a", "type": "llm"})


# --- llm --------------------------------------------------------------------------


def test_llm_requires_name_provider_and_model() -> None:
    assert _missing_fields(LLMConfig, {}) == {"name", "provider", "model"}


def test_llm_defaults_are_none() -> None:
    llm = LLMConfig(name="fast", provider="anthropic", model="claude")
    for field in (
        "temperature",
        "max_tokens",
        "default_system_prompt",
        "api_key_env_var",
        "api_base",
        "api_version",
    ):
        assert getattr(llm, field) is None


def test_llm_keeps_extra_fields_through_a_dump() -> None:
    data = {"name": "n", "provider": "p", "model": "m", "top_p": 0.9, "vendor": {"x": 1}}
    llm = LLMConfig.model_validate(data)
    assert llm.model_dump(exclude_none=True) == data
    assert LLMConfig.model_validate_json(llm.model_dump_json()) == llm


# --- mcp_server -------------------------------------------------------------------


def test_mcp_server_requires_name_and_capabilities() -> None:
    assert _missing_fields(MCPServerConfig, {"server_path": "s.py"}) == {"name", "capabilities"}


def test_mcp_server_defaults() -> None:
    server = MCPServerConfig(name="s", server_path="server.py", capabilities=["tools"])
    assert server.timeout == 10.0
    assert server.registration_timeout == 30.0
    assert server.roots == []
    assert server.exclude is None
    assert server.transport == "stdio"


@pytest.mark.parametrize(
    ("transport", "expected"),
    [
        ({"server_path": "server.py"}, "stdio"),
        (
            {"http_endpoint": "https://mcp.example.com/mcp", "headers": {"X-Key": "k"}},
            "http_stream",
        ),
        ({"command": "npx", "args": ["-y", "server"]}, "local"),
        ({"command": "server-bin"}, "local"),
    ],
)
def test_mcp_server_accepts_each_single_transport(transport: dict[str, Any], expected: str) -> None:
    server = MCPServerConfig.model_validate({"name": "s", "capabilities": ["tools"], **transport})
    assert server.transport == expected


def test_mcp_server_with_two_transports_names_them() -> None:
    with pytest.raises(ValidationError) as exc:
        MCPServerConfig.model_validate(
            {
                "name": "s",
                "capabilities": [],
                "server_path": "s.py",
                "http_endpoint": "http://localhost:8000",
            }
        )
    assert "the 'http_stream' transport takes http_endpoint, not server_path" in _error_text(exc)


def test_mcp_server_transport_type_names_the_field_it_needs() -> None:
    with pytest.raises(ValidationError, match="server_path is required for the 'stdio'"):
        MCPServerConfig.model_validate(
            {"name": "s", "capabilities": [], "transport_type": "stdio", "command": "x"}
        )
    server = MCPServerConfig.model_validate(
        {"name": "s", "capabilities": [], "transport_type": "local", "command": "x"}
    )
    assert server.transport == "local"


def test_mcp_server_with_no_transport_says_none_given() -> None:
    with pytest.raises(ValidationError) as exc:
        MCPServerConfig.model_validate({"name": "s", "capabilities": []})
    assert "no transport" in _error_text(exc)


def test_mcp_server_http_endpoint_is_kept_as_written() -> None:
    server = MCPServerConfig(name="s", capabilities=[], http_endpoint="http://host:1")
    assert server.model_dump()["http_endpoint"] == "http://host:1"


def test_mcp_server_takes_a_path_object_and_keeps_paths_as_text() -> None:
    server = MCPServerConfig.model_validate(
        {"name": "s", "capabilities": [], "server_path": Path("servers/s.py"), "exclude": None}
    )
    assert server.model_dump() == {
        "name": "s",
        "capabilities": [],
        "server_path": "servers/s.py",
        "exclude": None,
    }


def test_mcp_server_roots_are_typed() -> None:
    server = MCPServerConfig.model_validate(
        {
            "name": "s",
            "capabilities": ["tools"],
            "server_path": "p",
            "roots": [{"uri": "file:///data", "name": "data", "capabilities": ["read"]}],
        }
    )
    assert server.roots[0].uri == "file:///data"


# --- workflows --------------------------------------------------------------------


def test_linear_workflow_steps_are_names_or_name_type_objects() -> None:
    workflow = LinearWorkflowConfig.model_validate(
        {"name": "w", "steps": ["a", {"name": "b", "type": "custom_workflow"}]}
    )
    assert workflow.steps == ["a", WorkflowStep(name="b", type="custom_workflow")]
    assert workflow.description is None
    assert workflow.include_history is None
    assert workflow.include_logging is None
    assert LinearWorkflowConfig.model_validate_json(workflow.model_dump_json()) == workflow


def test_linear_workflow_requires_name_and_steps() -> None:
    assert _missing_fields(LinearWorkflowConfig, {}) == {"name", "steps"}


def test_linear_workflow_rejects_step_of_unknown_type() -> None:
    with pytest.raises(ValidationError, match=r"steps\.0"):
        LinearWorkflowConfig.model_validate({"name": "w", "steps": [{"name": "b", "type": "x"}]})


def test_workflow_config_is_the_linear_workflow() -> None:
    assert WorkflowConfig is LinearWorkflowConfig


_GRAPH: dict[str, Any] = {
    "name": "g",
    "nodes": [
        {"node_id": "n1", "name": "planner", "type": "agent"},
        {"node_id": "n2", "name": "writer", "type": "agent"},
    ],
    "edges": [{"from": "n1", "to": "n2"}],
}


def test_graph_edge_from_alias_round_trips_through_dump() -> None:
    graph = GraphWorkflowConfig.model_validate(_GRAPH)
    assert graph.edges[0].from_ == "n1"
    dumped = graph.model_dump()
    assert dumped["edges"] == [{"from": "n1", "to": "n2"}]
    assert GraphWorkflowConfig.model_validate(dumped) == graph
    adapter = TypeAdapter(GraphWorkflowConfig)
    assert adapter.validate_json(adapter.dump_json(graph)) == graph


def test_graph_edge_accepts_python_name_too() -> None:
    assert GraphEdge.model_validate({"from_": "a", "to": "b"}).model_dump() == {
        "from": "a",
        "to": "b",
    }


def test_graph_requires_name_and_nodes() -> None:
    assert _missing_fields(GraphWorkflowConfig, {}) == {"name", "nodes"}
    assert GraphWorkflowConfig.model_validate({"name": "g", "nodes": []}).edges == []


def test_graph_refuses_an_edge_without_its_ends() -> None:
    with pytest.raises(ValidationError, match=r"edges\.0\.to"):
        GraphWorkflowConfig.model_validate({**_GRAPH, "edges": [{"from": "n1"}]})


def test_custom_workflow_requires_module_path_and_class_name() -> None:
    assert _missing_fields(CustomWorkflowConfig, {}) == {"name", "module_path", "class_name"}
    custom = CustomWorkflowConfig(name="c", module_path="flows/c.py", class_name="Flow")
    assert custom.description is None


# --- kinds and upgraders ------------------------------------------------------------


def test_config_kinds_cover_every_kind_with_its_model() -> None:
    assert {
        "agent": AgentConfig,
        "llm": LLMConfig,
        "mcp_server": MCPServerConfig,
        "linear_workflow": LinearWorkflowConfig,
        "graph_workflow": GraphWorkflowConfig,
        "custom_workflow": CustomWorkflowConfig,
        "evaluation": EvaluationConfig,
        "security": SecurityConfig,
    } == CONFIG_MODELS
    assert list(CONFIG_KINDS) == list(CONFIG_MODELS)
    for kind, spec in CONFIG_KINDS.items():
        assert isinstance(spec, Kind) and spec.name == kind
        assert spec.adapter._type is CONFIG_MODELS[kind]
        assert spec.mode == "snapshot"
        assert spec.meta is None


def test_kinds_with_older_shapes_are_at_version_two_with_an_upgrader() -> None:
    versioned = {k for k, s in CONFIG_KINDS.items() if s.schema_version == 2}
    assert versioned == {"agent", "llm", "mcp_server", "linear_workflow"}
    for kind in versioned:
        assert set(CONFIG_KINDS[kind].upgraders) == {1}
    for kind in ("graph_workflow", "custom_workflow", "evaluation", "security"):
        assert CONFIG_KINDS[kind].schema_version == 1
        assert not CONFIG_KINDS[kind].upgraders


def test_kind_spec_is_frozen() -> None:
    spec = CONFIG_KINDS["agent"]
    with pytest.raises(AttributeError):
        spec.schema_version = 3  # type: ignore[misc]


def test_agent_upgrader_renames_client_ids_and_parses_string_booleans() -> None:
    old = {
        "name": "a",
        "client_ids": ["weather"],
        "auto": "True",
        "include_history": "yes",
        "include_logging": "false",
        "llm": {"model_name": "m"},
    }
    new = CONFIG_KINDS["agent"].upgraders[1](old)
    agent = AgentConfig.model_validate(new)
    assert new["auto"] is True and new["include_history"] is True
    assert new["include_logging"] is False
    assert agent.mcp_servers == ["weather"]
    assert agent.llm is not None and agent.llm.model == "m"
    assert "client_ids" in old, "the upgrader must not change its input"


def test_llm_upgrader_renames_llm_id_and_model_name() -> None:
    new = CONFIG_KINDS["llm"].upgraders[1](
        {"llm_id": "fast", "provider": "openai", "model_name": "gpt", "temperature": 0.1}
    )
    llm = LLMConfig.model_validate(new)
    assert (llm.name, llm.model) == ("fast", "gpt")
    assert "llm_id" not in llm.model_dump() and "model_name" not in llm.model_dump()


def test_mcp_server_upgrader_renames_client_id() -> None:
    new = CONFIG_KINDS["mcp_server"].upgraders[1](
        {"client_id": "weather", "server_path": "w.py", "capabilities": ["tools"]}
    )
    assert MCPServerConfig.model_validate(new).name == "weather"


def test_linear_workflow_upgrader_turns_simple_workflow_into_linear() -> None:
    old = {
        "type": "simple_workflow",
        "name": "w",
        "steps": ["a", {"name": "inner", "type": "simple_workflow"}],
        "include_history": "True",
    }
    workflow = LinearWorkflowConfig.model_validate(CONFIG_KINDS["linear_workflow"].upgraders[1](old))
    assert workflow.steps == ["a", WorkflowStep(name="inner", type="linear_workflow")]
    assert workflow.include_history is True


def test_upgrader_with_old_and_new_name_keeps_the_new_and_the_old_as_an_unknown_key() -> None:
    # The framework reads mcp_servers and ignores client_ids; nothing is dropped.
    both = {"name": "a", "client_ids": ["x"], "mcp_servers": ["y"]}
    assert upgrade_config("agent", both) == both


def test_agent_upgrader_moves_agent_level_llm_settings_into_llm() -> None:
    old = {"name": "a", "model": "claude-3", "temperature": 0.2, "max_tokens": 500}
    assert upgrade_config("agent", old) == {
        "name": "a",
        "llm": {"model": "claude-3", "temperature": 0.2, "max_tokens": 500},
    }
    # What the agent's llm already sets wins; the old key then stays as it was.
    mixed = {"name": "a", "temperature": 0.2, "llm": {"temperature": 0.9}}
    assert upgrade_config("agent", mixed) == mixed
    assert upgrade_config("agent", {"name": "a", "model": None}) == {"name": "a", "model": None}


def test_upgrade_config_leaves_current_shapes_alone() -> None:
    current = AgentConfig(name="a", mcp_servers=["x"], auto=True).model_dump()
    assert upgrade_config("agent", current) == current
    assert upgrade_config("agent", {"name": "a", "client_ids": ["x"]}, from_version=2) == {
        "name": "a",
        "client_ids": ["x"],
    }


def test_resolve_config_kind_maps_old_names() -> None:
    assert resolve_config_kind("simple_workflow") == "linear_workflow"
    assert resolve_config_kind("client") == "mcp_server"
    assert resolve_config_kind("agent") == "agent"
    with pytest.raises(KeyError):
        resolve_config_kind("robot")
