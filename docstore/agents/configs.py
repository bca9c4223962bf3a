"""Config models of the agent framework, and the kinds they are stored as.

The kinds are the framework's component types (aurite 0.4.2's
``aurite.lib.models.config.components``), and the models take what its models take:
they refuse only what the framework's own model refuses, keep every key they do not
know, and dump only the keys they were given, so a stored config reads back as written.

Each config kind has a typed handle (:data:`AGENT`, :data:`LLM`, ...: a
:class:`docstore.Kind`), all of them in :data:`CONFIG_KINDS`. Kinds the framework once
wrote in another shape are at ``schema_version`` 2 and carry an upgrader ``{1: fn}`` that
turns a version-1 dict into the current shape; the models themselves know nothing about
old shapes. :func:`docstore.agents.agent_registry` registers them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from docstore.kinds import BaseKind, Kind, Registry, Upgrader

__all__ = [
    "AGENT",
    "CONFIG_KINDS",
    "CONFIG_KIND_ALIASES",
    "CONFIG_MODELS",
    "CUSTOM_WORKFLOW",
    "EVALUATION",
    "GRAPH_WORKFLOW",
    "LINEAR_WORKFLOW",
    "LLM",
    "MCP_SERVER",
    "SECURITY",
    "AgentConfig",
    "CustomWorkflowConfig",
    "EvaluationCase",
    "EvaluationConfig",
    "GraphEdge",
    "GraphNode",
    "GraphWorkflowConfig",
    "LLMConfig",
    "LLMOverrides",
    "LinearWorkflowConfig",
    "MCPRoot",
    "MCPServerConfig",
    "SecurityConfig",
    "Upgrader",
    "WorkflowConfig",
    "WorkflowStep",
    "resolve_config_kind",
    "upgrade_config",
]


ComponentType = Literal["agent", "linear_workflow", "graph_workflow", "custom_workflow"]
"""What a workflow step or graph node may run."""


def _path_text(value: Any) -> Any:
    # The framework hands over resolved paths as Path objects; JSON keeps them as text.
    return str(value) if isinstance(value, PurePath) else value


PathText = Annotated[str, BeforeValidator(_path_text)]
"""A file path, kept as the text it was given (a ``Path`` is turned into its text)."""


class _Config(BaseModel):
    """Validates what the framework's own model validates, keeps every other key, and
    dumps only the keys it was given: what is stored reads back as it was written."""

    # Unknown keys are kept, never dropped: the framework's ConfigManager adds its own
    # (_source_file, _context_path, ...), and newer framework versions add fields.
    model_config = ConfigDict(extra="allow")

    @model_serializer(mode="wrap")
    def _given_keys_only(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        given = self.__pydantic_fields_set__
        for keys in _field_keys(type(self)):
            if keys[0] not in given and isinstance(data, dict):
                for key in keys:  # the field's name and alias: dumped by either
                    data.pop(key, None)
        return data


_FIELD_KEYS: dict[type[BaseModel], tuple[tuple[str, ...], ...]] = {}


def _field_keys(model: type[BaseModel]) -> tuple[tuple[str, ...], ...]:
    # Built once per model: a dump runs this for every config written.
    keys = _FIELD_KEYS.get(model)
    if keys is None:
        keys = _FIELD_KEYS[model] = tuple(
            (name,) if info.alias is None else (name, info.alias) for name, info in model.model_fields.items()
        )
    return keys


class _Component(_Config):
    name: str = Field(min_length=1)
    description: str | None = None


class LLMOverrides(_Config):
    """Per-agent overrides of the LLM config the agent points to; provider extras are kept."""

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    system_prompt: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    api_version: str | None = None


class AgentConfig(_Component):
    """An agent (kind ``agent``)."""

    type: Literal["agent"] = "agent"
    mcp_servers: list[str] | None = Field(default_factory=list)
    auto: bool | None = False
    llm_config_id: str | None = None
    llm: LLMOverrides | None = None
    system_prompt: str | None = None
    config_validation_schema: dict[str, Any] | None = None
    max_iterations: int | None = 50
    # None leaves the choice to the framework's default, so it differs from False.
    include_history: bool | None = None
    include_logging: bool | None = None
    exclude_components: list[str] | None = None
    # The framework takes a file name or a prompt; an inline object is kept as well.
    evaluation: str | dict[str, Any] | None = None


class LLMConfig(_Component):
    """An LLM configuration (kind ``llm``); provider-specific extra fields are kept."""

    type: Literal["llm"] = "llm"
    provider: str
    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    default_system_prompt: str | None = None
    api_key_env_var: str | None = None
    api_base: str | None = None
    api_version: str | None = None


class MCPRoot(_Config):
    """A root an MCP server is granted."""

    uri: str
    name: str
    capabilities: list[str] = Field(default_factory=list)


Transport = Literal["stdio", "http_stream", "local"]


class MCPServerConfig(_Component):
    """An MCP server (kind ``mcp_server``) reached by one transport.

    ``server_path`` runs it over stdio, ``http_endpoint`` (with optional ``headers``)
    speaks streamable HTTP, ``command`` + ``args`` launches a local process;
    ``transport_type`` names the transport, or is inferred from which one is given.
    """

    type: Literal["mcp_server"] = "mcp_server"
    transport_type: Transport | None = None
    server_path: PathText | None = None
    http_endpoint: str | None = None
    headers: dict[str, str] | None = None
    command: str | None = None
    args: list[str] | None = None
    roots: list[MCPRoot] = Field(default_factory=list)
    capabilities: list[str]
    timeout: float = 10.0
    registration_timeout: float = 30.0
    exclude: list[str] | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        # The framework's own rules (ClientConfig.infer_and_validate_transport_type).
        given = {
            "server_path": self.server_path,
            "http_endpoint": self.http_endpoint,
            "command": self.command,
        }
        transport = self.transport_type or self._inferred()
        needs = {"stdio": "server_path", "http_stream": "http_endpoint", "local": "command"}
        if transport is None:
            raise ValueError(
                "no transport: give server_path (stdio), http_endpoint (http_stream) or command (local)"
            )
        wanted = needs[transport]
        if given[wanted] is None:
            raise ValueError(f"{wanted} is required for the {transport!r} transport")
        others = [key for key, value in given.items() if key != wanted and value is not None]
        if others:
            raise ValueError(f"the {transport!r} transport takes {wanted}, not {' and '.join(others)}")
        return self

    def _inferred(self) -> Transport | None:
        if self.command is not None:
            return "local"
        if self.http_endpoint is not None:
            return "http_stream"
        if self.server_path is not None:
            return "stdio"
        return None

    @property
    def transport(self) -> Transport:
        """Which transport the server uses."""
        found = self.transport_type or self._inferred()
        assert found is not None  # the validator refuses a server without one
        return found


class WorkflowStep(_Config):
    """A workflow step naming the component it runs and its type."""

    name: str
    type: ComponentType


class LinearWorkflowConfig(_Component):
    """Steps run one after another (kind ``linear_workflow``)."""

    type: Literal["linear_workflow"] = "linear_workflow"
    steps: list[str | WorkflowStep]
    include_history: bool | None = None
    include_logging: bool | None = None


WorkflowConfig = LinearWorkflowConfig
"""The framework's name for a linear workflow's config."""


class GraphNode(_Config):
    """A node of a graph workflow."""

    node_id: str
    name: str
    type: ComponentType


class GraphEdge(_Config):
    """An edge of a graph workflow; ``from`` is a Python keyword, so the field is ``from_``."""

    # Dump by alias by default so a stored edge reads back with the same key.
    model_config = ConfigDict(
        extra="allow",
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )

    from_: str = Field(alias="from")
    to: str


class GraphWorkflowConfig(_Component):
    """Nodes joined by edges (kind ``graph_workflow``)."""

    type: Literal["graph_workflow"] = "graph_workflow"
    nodes: list[GraphNode]
    edges: list[GraphEdge] = Field(default_factory=list)
    include_history: bool | None = None
    include_logging: bool | None = None


class CustomWorkflowConfig(_Component):
    """A workflow implemented by a Python class (kind ``custom_workflow``)."""

    type: Literal["custom_workflow"] = "custom_workflow"
    module_path: PathText
    class_name: str


class EvaluationCase(_Config):
    """One case of an evaluation: an input and what is expected of the output."""

    # The framework makes up a random id for a case without one; storing one would make
    # every sync of the same file a change, so an id is kept only when given.
    id: str | None = None
    name: str | None = None
    input: str
    output: Any = None
    expectations: list[str]

    @field_validator("id", mode="before")
    @classmethod
    def _uuid(cls, value: Any) -> Any:
        if isinstance(value, UUID):
            return str(value)
        if isinstance(value, str):
            UUID(value)  # raises ValueError, as the framework's model does
        return value


class EvaluationConfig(_Component):
    """An evaluation (kind ``evaluation``): test cases for a component."""

    type: Literal["evaluation"] = "evaluation"
    component_type: str | None = None
    component_config: dict[str, Any] | None = None
    test_cases: list[EvaluationCase]
    review_llm: str | None = None
    expected_schema: dict[str, Any] | None = None
    component_refs: list[str] | None = None
    # The framework also takes a Python callable here, which no JSON can hold: a stored
    # evaluation names a file instead.
    run_agent: str | None = None
    run_agent_kwargs: dict[str, Any] = Field(default_factory=dict)
    use_cache: bool = True
    cache_ttl: int = 3600
    force_refresh: bool = False
    evaluation_config_id: str | None = None


class SecurityConfig(_Component):
    """A security assessment's settings (kind ``security``), kept as the framework's dict."""

    type: Literal["security"] = "security"
    config_dict: dict[str, Any] = Field(default_factory=dict)


# --- upgraders: version 1 (the framework's earlier shapes) -> version 2 ---------

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


def _rename(data: dict[str, Any], old: str, new: str) -> None:
    # With both spellings the framework reads the new one; the old one stays, as an
    # unknown key, rather than being dropped or refused.
    if old in data and new not in data:
        data[new] = data.pop(old)


def _bools(data: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE:
                data[key] = True
            elif word in _FALSE:
                data[key] = False


def _retag(data: dict[str, Any], current: str, *older: str) -> None:
    # Entries carry their component type; older ones under an older name.
    if data.get("type") in older:
        data["type"] = current


_AGENT_LLM_KEYS = ("model", "temperature", "max_tokens")
"""Agent-level keys of spring 2025 that the framework later moved into the agent's ``llm``."""


def _agent_v1(old: dict[str, Any]) -> dict[str, Any]:
    data = dict(old)
    _rename(data, "client_ids", "mcp_servers")
    _bools(data, "auto", "include_history", "include_logging")
    llm = data.get("llm")
    if llm is None or isinstance(llm, dict):
        llm = dict(llm or {})
        _rename(llm, "model_name", "model")
        for key in _AGENT_LLM_KEYS:
            # An override the agent's llm already sets wins; the old key then stays.
            value = data.get(key)
            if value is not None and llm.get(key) in (None, value):
                llm[key] = data.pop(key)
        if llm or data.get("llm") is not None:
            data["llm"] = llm
    return data


def _llm_v1(old: dict[str, Any]) -> dict[str, Any]:
    data = dict(old)
    _retag(data, "llm", "llm_config")
    _rename(data, "llm_id", "name")
    _rename(data, "model_name", "model")
    return data


def _mcp_server_v1(old: dict[str, Any]) -> dict[str, Any]:
    data = dict(old)
    _retag(data, "mcp_server", "client")
    _rename(data, "client_id", "name")
    return data


def _linear_workflow_v1(old: dict[str, Any]) -> dict[str, Any]:
    data = dict(old)
    _retag(data, "linear_workflow", "simple_workflow")
    _bools(data, "include_history", "include_logging")
    steps = data.get("steps")
    if isinstance(steps, list):
        data["steps"] = [
            {**step, "type": "linear_workflow"}
            if isinstance(step, dict) and step.get("type") == "simple_workflow"
            else step
            for step in steps
        ]
    return data


# The handles are made once, here; agent_registry() hands these same objects to each
# registry it makes, so that they work on every store the layer serves.
_CONFIGS = Registry()
AGENT: Kind[AgentConfig] = _CONFIGS.register("agent", AgentConfig, schema_version=2, upgraders={1: _agent_v1})
"""The ``agent`` kind: ``store.get(AGENT, name).data`` is an :class:`AgentConfig`."""
LLM: Kind[LLMConfig] = _CONFIGS.register("llm", LLMConfig, schema_version=2, upgraders={1: _llm_v1})
"""The ``llm`` kind (:class:`LLMConfig`)."""
MCP_SERVER: Kind[MCPServerConfig] = _CONFIGS.register(
    "mcp_server", MCPServerConfig, schema_version=2, upgraders={1: _mcp_server_v1}
)
"""The ``mcp_server`` kind (:class:`MCPServerConfig`)."""
LINEAR_WORKFLOW: Kind[LinearWorkflowConfig] = _CONFIGS.register(
    "linear_workflow", LinearWorkflowConfig, schema_version=2, upgraders={1: _linear_workflow_v1}
)
"""The ``linear_workflow`` kind (:class:`LinearWorkflowConfig`)."""
GRAPH_WORKFLOW: Kind[GraphWorkflowConfig] = _CONFIGS.register("graph_workflow", GraphWorkflowConfig)
"""The ``graph_workflow`` kind (:class:`GraphWorkflowConfig`)."""
CUSTOM_WORKFLOW: Kind[CustomWorkflowConfig] = _CONFIGS.register("custom_workflow", CustomWorkflowConfig)
"""The ``custom_workflow`` kind (:class:`CustomWorkflowConfig`)."""
EVALUATION: Kind[EvaluationConfig] = _CONFIGS.register("evaluation", EvaluationConfig)
"""The ``evaluation`` kind (:class:`EvaluationConfig`)."""
SECURITY: Kind[SecurityConfig] = _CONFIGS.register("security", SecurityConfig)
"""The ``security`` kind (:class:`SecurityConfig`)."""

CONFIG_KINDS: Mapping[str, BaseKind[Any]] = {kind.name: kind for kind in _CONFIGS}
"""Config kind name -> its handle (model, schema version, upgraders)."""

CONFIG_MODELS: Mapping[str, type[BaseModel]] = {
    "agent": AgentConfig,
    "llm": LLMConfig,
    "mcp_server": MCPServerConfig,
    "linear_workflow": LinearWorkflowConfig,
    "graph_workflow": GraphWorkflowConfig,
    "custom_workflow": CustomWorkflowConfig,
    "evaluation": EvaluationConfig,
    "security": SecurityConfig,
}
"""Config kind name -> its model class."""

CONFIG_KIND_ALIASES: Mapping[str, str] = {
    "simple_workflow": "linear_workflow",
    "client": "mcp_server",
    "llm_config": "llm",
}
"""The framework's older type names -> current kind names."""


def resolve_config_kind(type_name: str) -> str:
    """Return the config kind for a type name, old or current; raise ``KeyError`` if unknown."""
    kind = CONFIG_KIND_ALIASES.get(type_name, type_name)
    if kind not in CONFIG_KINDS:
        raise KeyError(type_name)
    return kind


def upgrade_config(kind: str, data: Mapping[str, Any], from_version: int = 1) -> dict[str, Any]:
    """Apply ``kind``'s upgraders to ``data`` from ``from_version`` to the current version.

    Upgraders leave current shapes alone, so a dict of unknown age can be
    upgraded from version 1.
    """
    spec = CONFIG_KINDS[kind]
    result = dict(data)
    for version in range(from_version, spec.schema_version):
        upgrader = spec.upgraders.get(version)
        if upgrader is not None:
            result = upgrader(result)
    return result
