"""Configs in the shapes the real framework (aurite 0.4.2) accepts, per component type, and
in the older shapes of its spring 2025 releases that its current loader still takes.

Imported by name (see agent_fixtures.py for why this is no conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aurite.lib.models.config import components as aurite

# What the framework's ConfigManager adds to every entry it indexes.
INDEX_KEYS: dict[str, Any] = {
    "_source_file": "/srv/project/config/components.json",
    "_context_path": "/srv/project",
    "_context_level": "project",
    "_project_name": "project",
    "_workspace_name": "workspace",
}

AURITE_MODELS: dict[str, type[Any]] = {
    "agent": aurite.AgentConfig,
    "llm": aurite.LLMConfig,
    "mcp_server": aurite.ClientConfig,
    "linear_workflow": aurite.WorkflowConfig,
    "graph_workflow": aurite.GraphWorkflowConfig,
    "custom_workflow": aurite.CustomWorkflowConfig,
    "evaluation": aurite.EvaluationConfig,
    "security": aurite.SecurityConfig,
}
"""The framework's own model for each component type (ConfigManager's model_map)."""

CURRENT: dict[str, list[dict[str, Any]]] = {
    "agent": [
        {"type": "agent", "name": "minimal"},
        {
            "type": "agent",
            "name": "full",
            "description": "everything set",
            "mcp_servers": ["weather"],
            "auto": "false",
            "llm_config_id": "fast",
            "llm": {
                "model": "claude-3-haiku",
                "temperature": 0,
                "max_tokens": 512,
                "system_prompt": "be brief",
                "api_base": "https://llm.example/v1",
                "api_key": "sk-not-a-secret",
                "api_version": "2024-01",
                "top_k": 5,
            },
            "system_prompt": "You plan.",
            "config_validation_schema": {"type": "object"},
            "max_iterations": 7,
            "include_history": True,
            "include_logging": None,
            "exclude_components": ["current_time"],
            "evaluation": "planning_test.json",
            **INDEX_KEYS,
        },
        {
            "type": "agent",
            "name": "loose",
            "mcp_servers": None,
            "auto": None,
            "max_iterations": None,
            "temperature_note": "an unknown key",
            "nested": {"k": [1]},
        },
        {
            "type": "agent",
            "name": "negative",
            "llm": {"temperature": -1, "max_tokens": 0},
            "max_iterations": 0,
        },
    ],
    "llm": [
        {"type": "llm", "name": "fast", "provider": "anthropic", "model": "claude-3-haiku"},
        {
            "type": "llm",
            "name": "tuned",
            "description": "provider extras",
            "provider": "openai",
            "model": "gpt-4o",
            "temperature": "0.3",
            "max_tokens": 100,
            "default_system_prompt": "hi",
            "api_key_env_var": "OPENAI_API_KEY",
            "api_base": "http://localhost:4000",
            "api_version": "v1",
            "top_p": 0.9,
            "vendor": {"seed": 7},
            **INDEX_KEYS,
        },
    ],
    "mcp_server": [
        {
            "type": "mcp_server",
            "name": "stdio",
            "server_path": "mcp_servers/weather.py",
            "capabilities": ["tools", "prompts"],
            "timeout": "15.0",
            "exclude": None,
        },
        {
            "type": "mcp_server",
            "name": "stdio_typed",
            "description": "transport given",
            "transport_type": "stdio",
            "server_path": Path("/abs/servers/planning.py"),
            "capabilities": ["tools"],
            "roots": [{"uri": "file:///data", "name": "data", "capabilities": ["read"]}],
            "exclude": ["delete_file"],
            "registration_timeout": 5,
            **INDEX_KEYS,
        },
        {
            "type": "mcp_server",
            "name": "http",
            "http_endpoint": "localhost:8088/mcp",
            "headers": {"X-API-Key": "k"},
            "capabilities": ["tools"],
            "timeout": 0,
        },
        {
            "type": "mcp_server",
            "name": "local",
            "transport_type": "local",
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-memory"],
            "capabilities": ["tools"],
        },
        {
            "type": "mcp_server",
            "name": "stdio_with_extras",
            "server_path": "s.py",
            "args": ["--verbose"],
            "headers": {"a": "b"},
            "capabilities": [],
        },
    ],
    "linear_workflow": [
        {"type": "linear_workflow", "name": "steps", "steps": ["planner", "writer"]},
        {
            "type": "linear_workflow",
            "name": "typed_steps",
            "description": "d",
            "steps": [
                "planner",
                {"name": "inner", "type": "linear_workflow"},
                {"name": "code", "type": "custom_workflow"},
            ],
            "include_history": "yes",
            "include_logging": False,
            **INDEX_KEYS,
        },
        {"type": "linear_workflow", "name": "empty", "steps": []},
    ],
    "graph_workflow": [
        {
            "type": "graph_workflow",
            "name": "graph",
            "description": "a diamond",
            "nodes": [
                {"node_id": "a", "name": "Red Agent", "type": "agent"},
                {"node_id": "b", "name": "Blue Agent", "type": "agent"},
            ],
            "edges": [{"from": "a", "to": "b"}, {"from": "a", "to": "nowhere"}],
            "include_history": True,
            **INDEX_KEYS,
        },
        {"type": "graph_workflow", "name": "no_edges", "nodes": [], "edges": []},
    ],
    "custom_workflow": [
        {
            "type": "custom_workflow",
            "name": "dotted",
            "module_path": "custom_workflows.example",
            "class_name": "Example",
        },
        {
            "type": "custom_workflow",
            "name": "resolved",
            "description": "a Path value",
            "module_path": Path("/srv/project/custom_workflows/example.py"),
            "class_name": "Example",
            **INDEX_KEYS,
        },
    ],
    "evaluation": [
        {
            "type": "evaluation",
            "name": "planning_test",
            "component_type": "agent",
            "component_refs": ["Linear Planning Agent"],
            "review_llm": "fast",
            "test_cases": [
                {
                    "id": "3f1c7a9e-0d6b-4a51-9a38-2f4bb2a1c0de",
                    "name": "paris",
                    "input": "Plan a day in Paris",
                    "expectations": ["mentions the Louvre"],
                },
                {"input": "Plan nothing", "output": {"steps": []}, "expectations": []},
            ],
            "expected_schema": {"type": "object"},
            "run_agent": "evals/run.py",
            "run_agent_kwargs": {"retries": 2},
            "use_cache": "false",
            "cache_ttl": 60,
            "force_refresh": True,
            "evaluation_config_id": "planning_test",
            **INDEX_KEYS,
        },
        {"type": "evaluation", "name": "bare", "test_cases": []},
    ],
    "security": [
        {
            "type": "security",
            "name": "default",
            "description": "d",
            "config_dict": {"mode": "development", "components": {"llm": {"enabled": True}}},
        },
        {"type": "security", "name": "empty", **INDEX_KEYS},
    ],
}
"""Per component type: configs the framework's current model validates, from the minimal
to every field set, with the values it coerces ("15.0", "false"), Path objects, nulls,
provider extras and the keys its ConfigManager adds."""

REFUSED: dict[str, dict[str, Any]] = {
    "agent": {"type": "agent", "name": "bad", "mcp_servers": "weather"},
    "llm": {"type": "llm", "name": "bad", "provider": "openai"},
    "mcp_server": {"type": "mcp_server", "name": "bad", "capabilities": ["tools"]},
    "linear_workflow": {"type": "linear_workflow", "name": "bad", "steps": [{"name": "x", "type": "robot"}]},
    "graph_workflow": {"type": "graph_workflow", "name": "bad", "nodes": [], "edges": [{"from": "a"}]},
    "custom_workflow": {"type": "custom_workflow", "name": "bad", "module_path": "m.py"},
    "evaluation": {"type": "evaluation", "name": "bad", "test_cases": [{"input": "x"}]},
    "security": {"type": "security", "name": "bad", "config_dict": ["not", "a", "dict"]},
}
"""Per component type: a config the framework's model refuses, and the field at fault."""

REFUSED_FIELD = {
    "agent": "mcp_servers",
    "llm": "model",
    "mcp_server": "transport",
    "linear_workflow": "steps",
    "graph_workflow": "edges",
    "custom_workflow": "class_name",
    "evaluation": "expectations",
    "security": "config_dict",
}

# Spring 2025 shapes (aurite 0.2.x): the current loader still indexes them (they carry
# type and name) and its models ignore the old keys; docstore upgrades them instead.
OLDER: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "agent",
        {
            "type": "agent",
            "name": "Weather Agent",
            "mcp_servers": ["weather_server"],
            "llm_config_id": "anthropic_claude_3_haiku",
            "model": "claude-3-opus-20240229",
            "temperature": 0.2,
            "max_tokens": 4096,
            "include_history": "True",
        },
        {
            "llm": {"model": "claude-3-opus-20240229", "temperature": 0.2, "max_tokens": 4096},
            "include_history": True,
        },
    ),
    (
        "agent",
        {
            "type": "agent",
            "name": "Planner",
            "client_ids": ["planning_server"],
            "temperature": 0.5,
            "llm": {"model_name": "gpt-4o"},
        },
        {"mcp_servers": ["planning_server"], "llm": {"model": "gpt-4o", "temperature": 0.5}},
    ),
    (
        "mcp_server",
        {
            "type": "mcp_server",
            "name": "weather_server",
            "server_path": "weather.py",
            "capabilities": ["tools"],
            "timeout": 15.0,
            "routing_weight": 1.0,
            "gcp_secrets": [{"secret_id": "projects/p/secrets/s/versions/latest", "env_var_name": "KEY"}],
        },
        {},
    ),
    (
        "llm",
        {
            "type": "llm",
            "name": "my_openai_gpt4_turbo",
            "llm_id": "my_openai_gpt4_turbo",
            "provider": "openai",
            "model": "gpt-4-turbo-preview",
            "model_name": "gpt-4-turbo",
        },
        {},
    ),
    (
        "linear_workflow",
        {
            "type": "linear_workflow",
            "name": "Weather Planning Workflow",
            "steps": ["Weather Agent", "Weather Planning Workflow Step 2"],
            "include_history": "False",
        },
        {"include_history": False},
    ),
]
"""(type, an entry in a spring 2025 shape, the fields docstore's upgrade gives it)."""

OLD_PROJECT: dict[str, Any] = {
    "name": "aurite",
    "description": "A new Aurite project: aurite",
    "llms": [
        {
            "llm_id": "my_openai_gpt4_turbo",
            "provider": "openai",
            "model_name": "gpt-4-turbo-preview",
            "temperature": 0.7,
            "max_tokens": 1500,
            "api_key_env_var": "OPENAI_API_KEY",
        }
    ],
    "mcp_servers": [
        {
            "name": "weather_server",
            "server_path": "mcp_servers/weather.py",
            "capabilities": ["tools", "prompts"],
            "timeout": 15.0,
        }
    ],
    "clients": [
        {
            "client_id": "planning_server",
            "server_path": "planning.py",
            "capabilities": ["tools"],
            "routing_weight": 0.5,
        }
    ],
    "agents": [
        {
            "name": "Weather Agent",
            "mcp_servers": ["weather_server"],
            "llm_config_id": "my_openai_gpt4_turbo",
            "temperature": 0.1,
        }
    ],
    "simple_workflows": [{"name": "Weather Planning Workflow", "steps": ["Weather Agent"]}],
    "custom_workflows": [
        {
            "name": "Example",
            "module_path": "custom_workflows/example.py",
            "class_name": "ExampleCustomWorkflow",
        }
    ],
}
"""A project file of aurite 0.2.x (its packaged default_project.json's layout)."""


def templates_folder() -> Path:
    """The example project the installed framework ships (``aurite init`` copies it)."""
    import importlib.resources

    folder = Path(str(importlib.resources.files("aurite") / "lib" / "init_templates" / "config"))
    assert folder.is_dir(), f"aurite's templates folder is missing: {folder}"
    return folder
