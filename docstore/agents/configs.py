"""Config models of the agent framework, and the kinds they are stored as.

Each config kind maps to a :class:`KindSpec` in :data:`CONFIG_KINDS`. Kinds the
framework once wrote in another shape are at ``schema_version`` 2 and carry an
upgrader ``{1: fn}`` that turns a version-1 dict into the current shape; the
models themselves know nothing about old shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CONFIG_KINDS",
    "CONFIG_KIND_ALIASES",
    "AgentConfig",
    "CustomWorkflowConfig",
    "GraphEdge",
    "GraphNode",
    "GraphWorkflowConfig",
    "KindSpec",
    "LLMConfig",
    "LLMOverrides",
    "LinearWorkflowConfig",
    "MCPRoot",
    "MCPServerConfig",
    "Upgrader",
    "WorkflowConfig",
    "WorkflowStep",
    "resolve_config_kind",
    "upgrade_config",
]

Upgrader = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns a document dict of schema version N into one of version N + 1."""

ComponentType = Literal["agent", "linear_workflow", "graph_workflow", "custom_workflow"]
"""What a workflow step or graph node may run."""


class _Config(BaseModel):
    # Unknown keys are refused so a misspelt field fails loudly instead of
    # being dropped on the next write.
    model_config = ConfigDict(extra="forbid")


class LLMOverrides(_Config):
    """Per-agent overrides of the LLM config the agent points to."""

    model: str | None = None
    temperature: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, gt=0)
    system_prompt: str | None = None
    api_base: str | None = None
    api_version: str | None = None


class AgentConfig(_Config):
    """An agent (kind ``agent``)."""

    name: str = Field(min_length=1)
    description: str | None = None
    mcp_servers: list[str] = Field(default_factory=list)
    auto: bool = False
    llm_config_id: str | None = None
    llm: LLMOverrides | None = None
    system_prompt: str | None = None
    config_validation_schema: dict[str, Any] | None = None
    max_iterations: int = Field(default=50, ge=1)
    # None leaves the choice to the framework's default, so it differs from False.
    include_history: bool | None = None
    include_logging: bool | None = None
    exclude_components: list[str] | None = None
    evaluation: str | dict[str, Any] | None = None


class LLMConfig(BaseModel):
    """An LLM configuration (kind ``llm``); provider-specific extra fields are kept."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, gt=0)
    default_system_prompt: str | None = None
    api_key_env_var: str | None = None
    api_base: str | None = None
    api_version: str | None = None


class MCPRoot(_Config):
    """A root an MCP server is granted."""

    uri: str
    name: str
    capabilities: list[str] = Field(default_factory=list)


class MCPServerConfig(_Config):
    """An MCP server (kind ``mcp_server``) reached by exactly one transport.

    ``server_path`` runs it over stdio, ``http_endpoint`` (with optional
    ``headers``) speaks streamable HTTP, ``command`` + ``args`` launches a local
    process.
    """

    name: str = Field(min_length=1)
    server_path: str | None = None
    http_endpoint: str | None = None
    headers: dict[str, str] | None = None
    command: str | None = None
    args: list[str] | None = None
    roots: list[MCPRoot] = Field(default_factory=list)
    capabilities: list[str]
    timeout: float = Field(default=10.0, gt=0)
    registration_timeout: float = Field(default=30.0, gt=0)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("http_endpoint")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        # Kept as a plain string: pydantic's HttpUrl would normalise it (adding
        # a trailing slash), so a stored config would not read back as written.
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        given = [
            label
            for label, present in (
                ("server_path", self.server_path is not None),
                ("http_endpoint", self.http_endpoint is not None),
                ("command", self.command is not None),
            )
            if present
        ]
        if len(given) != 1:
            got = " and ".join(given) if given else "none"
            raise ValueError(
                "exactly one transport is needed: server_path, http_endpoint or "
                f"command (+ args); got {got}"
            )
        if self.args is not None and self.command is None:
            raise ValueError("args are given without a command")
        if self.headers is not None and self.http_endpoint is None:
            raise ValueError("headers are only used with http_endpoint")
        return self

    @property
    def transport(self) -> Literal["stdio", "http_stream", "local"]:
        """Which transport the server uses."""
        if self.server_path is not None:
            return "stdio"
        if self.http_endpoint is not None:
            return "http_stream"
        return "local"


class WorkflowStep(_Config):
    """A workflow step naming the component it runs and its type."""

    name: str = Field(min_length=1)
    type: ComponentType


class LinearWorkflowConfig(_Config):
    """Steps run one after another (kind ``linear_workflow``)."""

    name: str = Field(min_length=1)
    description: str | None = None
    steps: list[str | WorkflowStep]
    include_history: bool | None = None
    include_logging: bool | None = None


WorkflowConfig = LinearWorkflowConfig
"""The framework's older name for a linear ("simple") workflow."""


class GraphNode(_Config):
    """A node of a graph workflow."""

    node_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: ComponentType


class GraphEdge(_Config):
    """An edge of a graph workflow; ``from`` is a Python keyword, so the field is ``from_``."""

    # Dump by alias by default so a stored edge reads back with the same key.
    model_config = ConfigDict(
        extra="forbid",
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)


class GraphWorkflowConfig(_Config):
    """Nodes joined by edges (kind ``graph_workflow``)."""

    name: str = Field(min_length=1)
    description: str | None = None
    nodes: list[GraphNode]
    edges: list[GraphEdge] = Field(default_factory=list)
    include_history: bool | None = None
    include_logging: bool | None = None

    @model_validator(mode="after")
    def _edges_join_nodes(self) -> GraphWorkflowConfig:
        ids = [node.node_id for node in self.nodes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate node_id: {', '.join(dupes)}")
        known = set(ids)
        for edge in self.edges:
            for end in (edge.from_, edge.to):
                if end not in known:
                    raise ValueError(
                        f"edge {edge.from_!r} -> {edge.to!r} names unknown node_id {end!r}"
                    )
        return self


class CustomWorkflowConfig(_Config):
    """A workflow implemented by a Python class (kind ``custom_workflow``)."""

    name: str = Field(min_length=1)
    description: str | None = None
    module_path: str = Field(min_length=1)
    class_name: str = Field(min_length=1)


@dataclass(frozen=True)
class KindSpec:
    """How one kind is stored: its model, schema version and upgraders.

    ``model`` is anything ``pydantic.TypeAdapter`` accepts (a model class, or a
    union alias for messages). ``upgraders[n]`` turns version ``n`` into
    ``n + 1``. ``mode`` is ``"snapshot"`` or ``"log"``; ``meta`` is the model of
    a log kind's head.
    """

    model: Any
    schema_version: int
    upgraders: Mapping[int, Upgrader] = field(default_factory=dict)
    mode: Literal["snapshot", "log"] = "snapshot"
    meta: type[Any] | None = None


# --- upgraders: version 1 (the framework's earlier shapes) -> version 2 ---------

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


def _rename(data: dict[str, Any], old: str, new: str) -> None:
    if old not in data:
        return
    value = data.pop(old)
    # Both spellings with different values is ambiguous; guessing would lose data.
    if new in data and data[new] != value:
        raise ValueError(f"both {old!r} and {new!r} are given, with different values")
    data[new] = value


def _bools(data: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE:
                data[key] = True
            elif word in _FALSE:
                data[key] = False


def _drop_tag(data: dict[str, Any], *tags: str) -> None:
    # Older documents carried their component type inside the entry.
    if data.get("type") in tags:
        del data["type"]


def _agent_v1(old: dict[str, Any]) -> dict[str, Any]:
    data = dict(old)
    _drop_tag(data, "agent")
    _rename(data, "client_ids", "mcp_servers")
    _bools(data, "auto", "include_history", "include_logging")
    llm = data.get("llm")
    if isinstance(llm, dict) and "model_name" in llm:
        llm = dict(llm)
        _rename(llm, "model_name", "model")
        data["llm"] = llm
    return data


def _llm_v1(old: dict[str, Any]) -> dict[str, Any]:
    data = dict(old)
    _drop_tag(data, "llm", "llm_config")
    _rename(data, "llm_id", "name")
    _rename(data, "model_name", "model")
    return data


def _mcp_server_v1(old: dict[str, Any]) -> dict[str, Any]:
    data = dict(old)
    _drop_tag(data, "mcp_server", "client")
    _rename(data, "client_id", "name")
    return data


def _linear_workflow_v1(old: dict[str, Any]) -> dict[str, Any]:
    data = dict(old)
    _drop_tag(data, "linear_workflow", "simple_workflow")
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


CONFIG_KINDS: Mapping[str, KindSpec] = {
    "agent": KindSpec(AgentConfig, 2, {1: _agent_v1}),
    "llm": KindSpec(LLMConfig, 2, {1: _llm_v1}),
    "mcp_server": KindSpec(MCPServerConfig, 2, {1: _mcp_server_v1}),
    "linear_workflow": KindSpec(LinearWorkflowConfig, 2, {1: _linear_workflow_v1}),
    "graph_workflow": KindSpec(GraphWorkflowConfig, 1),
    "custom_workflow": KindSpec(CustomWorkflowConfig, 1),
}
"""Config kind name -> how it is stored."""

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
