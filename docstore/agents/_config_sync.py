"""Config sync, the I/O-free part: configs validated into their kinds' models before any
SQL runs (so a bad entry costs no round trip), the framework's component index read into
kinds, and the :class:`SyncReport` a sync returns. The managers do the reads and writes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from docstore.errors import DocumentInvalid

from .configfiles import ConfigProblem
from .configs import CONFIG_KINDS, CONFIG_MODELS, GraphWorkflowConfig, resolve_config_kind, upgrade_config

__all__ = [
    "SyncReport",
    "coerce_config",
    "collect",
    "config_name",
    "index_configs",
    "index_group",
    "workflow_kind",
]


@dataclass(frozen=True)
class SyncReport:
    """What a config sync did.

    ``applied`` is False when problems stopped it: then nothing was written.
    """

    written: tuple[tuple[str, str, int], ...] = ()
    """(kind, name, new version) of every config that changed."""
    unchanged: tuple[tuple[str, str], ...] = ()
    """(kind, name) of every config already stored as it is."""
    problems: tuple[ConfigProblem, ...] = ()
    """Broken files and entries, each naming its file and entry."""
    applied: bool = True
    warnings: tuple[ConfigProblem, ...] = ()
    """Entries left out as the framework leaves them out: a name defined again."""
    created: tuple[tuple[str, str], ...] = ()
    """(kind, name) of the configs in ``written`` that were not stored before."""

    @property
    def ok(self) -> bool:
        """True when nothing was broken."""
        return not self.problems

    def __str__(self) -> str:
        lines = [
            f"{len(self.written)} written, {len(self.unchanged)} unchanged, "
            f"{len(self.problems)} problem(s)"
            + ("" if self.applied else "; nothing written (use partial to sync the rest)")
        ]
        lines += [f"  wrote {kind} {name!r} version {version}" for kind, name, version in self.written]
        lines += [f"  problem: {problem}" for problem in self.problems]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def coerce_config(kind: str, value: Any) -> BaseModel:
    """``value`` (a model or a dict, in a current or older shape) as ``kind``'s model."""
    model = CONFIG_MODELS[kind]
    if isinstance(value, model):
        same: BaseModel = value
        return same
    raw = value.model_dump(by_alias=True) if isinstance(value, BaseModel) else value
    label = str(raw.get("name") or "<unnamed>") if isinstance(raw, Mapping) else "<unnamed>"
    try:
        data = upgrade_config(kind, raw) if isinstance(raw, Mapping) else raw
        result: BaseModel = model.model_validate(data)
    except ValidationError as exc:
        raise DocumentInvalid(kind, label, None, exc.errors(include_url=False), "write") from None
    except (TypeError, ValueError) as exc:  # an upgrader refusing an ambiguous entry
        raise DocumentInvalid(kind, label, None, [{"loc": (), "msg": str(exc)}], "write") from None
    return result


def config_name(model: BaseModel) -> str:
    """The name a config model carries."""
    name: str = getattr(model, "name")  # noqa: B009 - every config model has one
    return name


def workflow_kind(value: Any) -> str:
    """``graph_workflow`` for a graph (a model, or a dict with nodes), else ``linear_workflow``."""
    if isinstance(value, GraphWorkflowConfig):
        return "graph_workflow"
    if isinstance(value, Mapping) and (value.get("type") == "graph_workflow" or "nodes" in value):
        return "graph_workflow"
    return "linear_workflow"


def collect(groups: Mapping[str, Any]) -> dict[str, dict[str, BaseModel]]:
    """kind -> name -> validated config, from mappings or iterables of configs.

    Everything is validated before any SQL runs, so a bad entry costs no round trip.
    """
    out: dict[str, dict[str, BaseModel]] = {}
    for kind, values in groups.items():
        if values is None:
            continue
        pairs: Iterable[tuple[str | None, Any]] = (
            values.items() if isinstance(values, Mapping) else ((None, v) for v in values)
        )
        for key, value in pairs:
            actual = workflow_kind(value) if kind == "linear_workflow" else kind
            model = coerce_config(actual, value)
            name = config_name(model)
            if key is not None and key != name:
                raise DocumentInvalid(
                    actual,
                    str(key),
                    None,
                    [{"loc": ("name",), "msg": f"listed under {key!r} but named {name!r}"}],
                    "write",
                )
            bucket = out.setdefault(actual, {})
            if name in bucket:
                raise DocumentInvalid(
                    actual, name, None, [{"loc": ("name",), "msg": "given twice in one sync"}], "write"
                )
            bucket[name] = model
    return out


def index_configs(component_index: Any) -> dict[str, dict[str, BaseModel]]:
    """kind -> name -> validated config, from the framework's component index
    (type -> name -> config)."""
    if not isinstance(component_index, Mapping):
        raise DocumentInvalid(
            "component_index",
            "<index>",
            None,
            [{"loc": (), "msg": "the component index is a dict: type -> name -> config"}],
            "write",
        )
    configs: dict[str, dict[str, BaseModel]] = {}
    for type_name, entries in component_index.items():
        try:
            kind = resolve_config_kind(str(type_name))
        except KeyError:
            raise DocumentInvalid(
                str(type_name),
                "<index>",
                None,
                [
                    {
                        "loc": (),
                        "msg": f"unknown component type {type_name!r}; known: {', '.join(CONFIG_KINDS)}",
                    }
                ],
                "write",
            ) from None
        if not isinstance(entries, Mapping):
            raise DocumentInvalid(
                kind,
                "<index>",
                None,
                [{"loc": (), "msg": "a component type maps names to configs"}],
                "write",
            )
        for key, value in entries.items():
            # As the framework's own storage does: a value JSON cannot hold (a Path)
            # is stored as its str().
            model = coerce_config(kind, to_jsonable_python(value, fallback=str))
            name = config_name(model)
            if key != name:
                raise DocumentInvalid(
                    kind,
                    str(key),
                    None,
                    [{"loc": ("name",), "msg": f"indexed as {key!r} but named {name!r}"}],
                    "write",
                )
            bucket = configs.setdefault(kind, {})
            if name in bucket:
                raise DocumentInvalid(
                    kind,
                    name,
                    None,
                    [{"loc": ("name",), "msg": "indexed under two types of one kind"}],
                    "write",
                )
            bucket[name] = model
    return configs


def index_group(kind: str, data: Mapping[str, Any]) -> str:
    """The component index's type for a stored config of ``kind``: the ``type`` it
    carries when that names the same kind, else the kind."""
    tag = data.get("type")
    return tag if isinstance(tag, str) and _kind_of(tag) == kind else kind


def _kind_of(type_name: str) -> str | None:
    try:
        return resolve_config_kind(type_name)
    except KeyError:
        return None
