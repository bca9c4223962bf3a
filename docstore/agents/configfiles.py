"""Read the framework's config files into validated configs, collecting what is broken.

Four layouts are understood:

* a project file: an object with any of the keys ``clients``, ``agents``,
  ``simple_workflows``, ``custom_workflows``, ``llms`` (plus the current kind
  names in the plural), each a list of entries of that kind;
* a component file: a list of entries, a single entry, or an object mapping
  names to entries, each tagged with ``type``;
* a directory: every ``*.json`` file under it, then every ``*.yaml``, then every
  ``*.yml``, each in the order ``Path.rglob`` lists them: the framework's own order
  (``ConfigManager._build_component_index``);
* a project or workspace directory, holding the framework's ``.aurite`` anchor: the
  directories its ``include_configs`` name, in the framework's order (see
  :func:`anchored_sources`), each entry with the keys its ConfigManager adds.

Several paths are read in the order given, like the framework's config sources. A name
defined twice for one kind keeps the first, in that order, as the framework does; the
second is a warning naming both files. Entries go through the kind's upgraders first, so
the framework's older shapes load too. A broken entry never stops the rest from loading:
it becomes a :class:`ConfigProblem` naming the file and the entry, and the caller decides.
YAML files need PyYAML (``pip install 'docstore[yaml]'``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from docstore.agents._yaml import YAMLRefused, load_yaml
from docstore.agents.configs import (
    CONFIG_KIND_ALIASES,
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
    resolve_config_kind,
    upgrade_config,
)
from docstore.extras import install_extra

__all__ = [
    "ANCHOR",
    "PROJECT_KEYS",
    "ConfigFileError",
    "ConfigProblem",
    "LoadedConfigs",
    "YAMLRefused",
    "anchored_sources",
    "config_files",
    "load_configs",
    "load_yaml",
]

PROJECT_KEYS: Mapping[str, str] = {
    "clients": "mcp_server",
    "mcp_servers": "mcp_server",
    "agents": "agent",
    "llms": "llm",
    "llm_configs": "llm",
    "simple_workflows": "linear_workflow",
    "linear_workflows": "linear_workflow",
    "graph_workflows": "graph_workflow",
    "custom_workflows": "custom_workflow",
    "evaluations": "evaluation",
}
"""Project-file key -> the config kind its entries are."""

# The framework globs these, one after the other (ConfigManager._build_component_index).
_PATTERNS = ("*.json", "*.yaml", "*.yml")
# Keys that named an entry before ``name`` did; used only to label problems.
_OLD_NAME_KEYS = ("name", "llm_id", "client_id")

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConfigProblem:
    """A file or entry that could not be loaded."""

    file: Path
    name: str | None
    """The entry's name; None when the whole file failed or the entry has none."""
    message: str
    kind: str | None = None
    entry: Any = None
    """The raw entry as read, for callers that want to show or fix it."""

    def __str__(self) -> str:
        where = str(self.file)
        if self.kind is not None or self.name is not None:
            where += f": {self.kind or 'entry'} {self.name!r}"
        return f"{where}: {self.message}"


class ConfigFileError(ValueError):
    """Config files had problems; ``problems`` lists each one (one per line of the
    message, after a line saying how many), ``warnings`` what was let pass."""

    def __init__(
        self, problems: list[ConfigProblem], *, note: str = "", warnings: list[ConfigProblem] | None = None
    ) -> None:
        self.problems = problems
        self.warnings = list(warnings or ())
        lines = "\n".join(f"  {problem}" for problem in problems)
        suffix = f" ({note})" if note else ""
        super().__init__(f"{len(problems)} problem(s) in config files{suffix}:\n{lines}")


@dataclass
class LoadedConfigs:
    """What :func:`load_configs` found: valid configs per kind, and the problems."""

    configs: dict[str, dict[str, BaseModel]] = field(default_factory=dict)
    """kind -> name -> validated model, for every kind in ``CONFIG_KINDS``."""
    problems: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)
    """What the framework also lets pass with a warning: a name defined again (the first
    one is kept)."""
    sources: dict[tuple[str, str], Path] = field(default_factory=dict)
    """(kind, name) -> the file the entry came from."""

    @property
    def ok(self) -> bool:
        """True when nothing was broken."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise :class:`ConfigFileError` if anything was broken."""
        if self.problems:
            raise ConfigFileError(self.problems)

    def _of(self, kind: str, model: type[M]) -> dict[str, M]:
        return {n: c for n, c in self.configs.get(kind, {}).items() if isinstance(c, model)}

    @property
    def agents(self) -> dict[str, AgentConfig]:
        """Agents by name."""
        return self._of("agent", AgentConfig)

    @property
    def llms(self) -> dict[str, LLMConfig]:
        """LLM configs by name."""
        return self._of("llm", LLMConfig)

    @property
    def mcp_servers(self) -> dict[str, MCPServerConfig]:
        """MCP servers by name."""
        return self._of("mcp_server", MCPServerConfig)

    @property
    def linear_workflows(self) -> dict[str, LinearWorkflowConfig]:
        """Linear workflows by name."""
        return self._of("linear_workflow", LinearWorkflowConfig)

    @property
    def graph_workflows(self) -> dict[str, GraphWorkflowConfig]:
        """Graph workflows by name."""
        return self._of("graph_workflow", GraphWorkflowConfig)

    @property
    def custom_workflows(self) -> dict[str, CustomWorkflowConfig]:
        """Custom workflows by name."""
        return self._of("custom_workflow", CustomWorkflowConfig)

    @property
    def evaluations(self) -> dict[str, EvaluationConfig]:
        """Evaluations by name."""
        return self._of("evaluation", EvaluationConfig)

    @property
    def security(self) -> dict[str, SecurityConfig]:
        """Security configs by name."""
        return self._of("security", SecurityConfig)


def load_configs(*paths: str | Path, strict: bool = False) -> LoadedConfigs:
    """Load project files, component files or directories of them, first path first.

    Broken files and entries are collected in ``problems`` while the rest load; with
    ``strict`` a :class:`ConfigFileError` is raised instead. A name defined again keeps
    the first definition and adds a warning. A path that does not exist raises
    ``FileNotFoundError``.
    """
    roots = [Path(path) for path in paths]
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"no config file or directory at {root}")
    loaded = LoadedConfigs(configs={kind: {} for kind in CONFIG_KINDS})
    for root in roots:
        if not root.is_dir():
            _load_file(root, loaded, {})
        elif (root / ANCHOR).is_file():
            for source, keys in anchored_sources(root, loaded):
                for file in config_files(source):
                    _load_file(file, loaded, {"_source_file": str(file.resolve()), **keys})
        else:
            for file in config_files(root):
                _load_file(file, loaded, {})
    if strict:
        loaded.raise_for_problems()
    return loaded


ANCHOR = ".aurite"
"""The framework's anchor file: a TOML file marking a project or workspace directory."""


def _anchor_settings(anchor: Path, loaded: LoadedConfigs) -> dict[str, Any]:
    try:
        with anchor.open("rb") as f:
            settings = tomllib.load(f).get("aurite", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problem = ConfigProblem(anchor, None, f"cannot be read: {exc}")
        if problem not in loaded.problems:
            loaded.problems.append(problem)
        return {}
    return settings if isinstance(settings, dict) else {}


def anchored_sources(start: Path, loaded: LoadedConfigs | None = None) -> list[tuple[Path, dict[str, str]]]:
    """The config directories the framework reads for a project or workspace directory
    holding a ``.aurite`` anchor, in its order, each with the keys its ConfigManager adds
    to every component it indexes from there (``_context_path``, ``_context_level``,
    ``_project_name``, ``_workspace_name``).

    The order is the framework's (``ConfigManager._initialize_sources``): the project's
    ``include_configs``, then its workspace's, then the workspace's other projects', then
    the user's ``~/.aurite`` directory. An anchor that cannot be read is a problem in
    ``loaded``.
    """
    found = loaded if loaded is not None else LoadedConfigs()
    here = start.resolve()
    project, workspace = _project_and_workspace(here, found)
    user = Path.home() / ANCHOR
    sources = _source_roots(project, workspace, found)
    if user.is_dir():
        sources.append((user, user))
    return [(directory, _context_keys(root, workspace, user)) for directory, root in sources]


def _project_and_workspace(here: Path, found: LoadedConfigs) -> tuple[Path | None, Path | None]:
    """The project and workspace directories ``here`` belongs to, by the nearest anchors
    (an anchor with no ``type`` marks a project; in a workspace's own directory, none)."""
    anchors = [d / ANCHOR for d in (here, *here.parents) if (d / ANCHOR).is_file()]
    project: Path | None = None
    workspace: Path | None = None
    for anchor in anchors:
        kind = _anchor_settings(anchor, found).get("type")
        if kind == "project":
            project = anchor.parent
        elif kind == "workspace":
            workspace = anchor.parent
    if workspace == here:
        project = None
    elif project is None and anchors:
        project = anchors[0].parent
    return project, workspace


def _source_roots(
    project: Path | None, workspace: Path | None, found: LoadedConfigs
) -> list[tuple[Path, Path]]:
    """(config directory, the anchored directory that includes it), each directory once:
    the project's, then the workspace's, then the workspace's other projects'."""
    sources: list[tuple[Path, Path]] = []

    def include(root: Path) -> None:
        for rel in _anchor_settings(root / ANCHOR, found).get("include_configs", []):
            directory = (root / rel).resolve()
            if directory.is_dir() and all(directory != s for s, _ in sources):
                sources.append((directory, root))

    if project is not None:
        include(project)
    if workspace is not None:
        include(workspace)
        for rel in _anchor_settings(workspace / ANCHOR, found).get("projects", []):
            other = (workspace / rel).resolve()
            if other != project and (other / ANCHOR).is_file():
                include(other)
    return sources


def _context_keys(root: Path, workspace: Path | None, user: Path) -> dict[str, str]:
    """The keys the framework's ConfigManager adds to a component indexed from ``root``."""
    keys = {"_context_path": str(root.resolve())}
    if workspace is not None and root == workspace:
        keys.update(_context_level="workspace", _workspace_name=workspace.name)
    elif root == user:
        keys["_context_level"] = "user"
    else:
        keys.update(_context_level="project", _project_name=root.name)
        if workspace is not None:
            keys["_workspace_name"] = workspace.name
    return keys


def config_files(directory: Path) -> list[Path]:
    """The config files under ``directory``, in the order the framework reads them."""
    return [file for pattern in _PATTERNS for file in directory.rglob(pattern) if file.is_file()]


def _load_file(file: Path, loaded: LoadedConfigs, keys: Mapping[str, str]) -> None:
    try:
        text = file.read_text(encoding="utf-8")
        document = json.loads(text) if file.suffix.lower() == ".json" else _yaml(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        loaded.problems.append(ConfigProblem(file, None, f"cannot be read: {exc}"))
        return
    for kind, entry in _entries(file, document, loaded):
        _load_entry(file, kind, entry, loaded, keys)


def _yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ValueError(f"reading YAML needs PyYAML: {install_extra('yaml')}") from None
    try:
        return load_yaml(text)  # an alias bomb is a ValueError (YAMLRefused) naming its line
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def _entries(file: Path, document: Any, loaded: LoadedConfigs) -> Iterator[tuple[str | None, Any]]:
    """Yield (kind from context, raw entry); the kind is None when the entry's ``type`` tells."""
    if document is None:  # an empty YAML file holds nothing, which is not an error
        return
    if isinstance(document, list):
        for entry in document:
            yield None, entry
        return
    if not isinstance(document, dict):
        kind = type(document).__name__
        loaded.problems.append(
            ConfigProblem(file, None, f"expected a list or an object of entries, got {kind}")
        )
        return
    if "type" in document:
        yield None, document
        return
    project_keys = [key for key in document if key in PROJECT_KEYS]
    if project_keys:
        for key in project_keys:
            entries = document[key]
            if not isinstance(entries, list):
                got = type(entries).__name__
                loaded.problems.append(
                    ConfigProblem(file, None, f"{key!r} must be a list of entries, got {got}")
                )
                continue
            for entry in entries:
                yield PROJECT_KEYS[key], entry
        return
    # Otherwise an object mapping names to entries; the key names the entry.
    if not all(isinstance(entry, dict) for entry in document.values()):
        message = (
            "an object must be a project file, one entry with a 'type', or a mapping of names to entries"
        )
        loaded.problems.append(ConfigProblem(file, None, message))
        return
    for name, entry in document.items():
        if isinstance(entry, dict) and not any(k in entry for k in _OLD_NAME_KEYS):
            entry = {"name": name, **entry}
        yield None, entry


def _label(entry: Mapping[str, Any]) -> str | None:
    for key in _OLD_NAME_KEYS:
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _load_entry(
    file: Path, context: str | None, entry: Any, loaded: LoadedConfigs, keys: Mapping[str, str]
) -> None:
    if not isinstance(entry, dict):
        got = type(entry).__name__
        loaded.problems.append(
            ConfigProblem(file, None, f"an entry must be an object, got {got}", context, entry)
        )
        return
    name = _label(entry)
    # As the framework's ConfigManager does for what it indexes from an anchored project.
    data = {**entry, **keys}
    tag = data.get("type")
    kind = context
    if tag is not None:
        try:
            kind = resolve_config_kind(str(tag))
        except KeyError:
            known = ", ".join([*CONFIG_KINDS, *CONFIG_KIND_ALIASES])
            message = f"unknown type {tag!r}; expected one of {known}"
            loaded.problems.append(ConfigProblem(file, name, message, context, entry))
            return
        if context is not None and kind != context:
            message = f"type {tag!r} does not belong in a list of {context} entries"
            loaded.problems.append(ConfigProblem(file, name, message, context, entry))
            return
    if kind is None:
        message = "has no 'type' saying what kind of config it is"
        loaded.problems.append(ConfigProblem(file, name, message, None, entry))
        return
    try:
        model: Any = CONFIG_MODELS[kind].model_validate(upgrade_config(kind, data))
    except (ValidationError, ValueError) as exc:
        message = _describe(exc)
        loaded.problems.append(ConfigProblem(file, name, message, kind, entry))
        return
    # Every config model has a required non-empty name, so this is the entry's key.
    key: str = model.name
    previous = loaded.sources.get((kind, key))
    if previous is not None:
        message = f"defined again: the first definition, in {previous}, is kept"
        loaded.warnings.append(ConfigProblem(file, key, message, kind, entry))
        return
    loaded.configs[kind][key] = model
    loaded.sources[(kind, key)] = file


def _describe(exc: ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "; ".join(parts)
