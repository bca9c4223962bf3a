"""How docstore's modules import one another: the import-linter contracts in
pyproject.toml (no cycles, layers, independence, the core below its layers, the core's
privates its own), run as CI runs them, each shown to be live; and which layers import
each extra's third-party packages.
"""

from __future__ import annotations

import ast
import copy
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import docstore

ROOT = Path(docstore.__file__).resolve().parent
PROJECT = ROOT.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# The packages on top of the core (pyproject's contracts name the same).
LAYERS = ("agents", "cli", "langchain", "langgraph", "testing")
# Optional extras' third-party packages, and the layers that may import each: the core
# and the other layers must import without them.
EXTRA_PACKAGES = {
    "langgraph": ("docstore.langgraph",),
    "langchain_core": ("docstore.langgraph", "docstore.langchain"),
}


def _config() -> dict[str, Any]:
    with (PROJECT / "pyproject.toml").open("rb") as file:
        config: dict[str, Any] = tomllib.load(file)["tool"]["importlinter"]
    return config


def _contract(config: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in config["contracts"] if c["id"] == name]
    assert len(found) == 1, name
    return found[0]


def _lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: install the dev group (import-linter)"
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _write(config: dict[str, Any], path: Path) -> Path:
    """``config`` as an import-linter TOML file (the little TOML it needs)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return "[" + ", ".join(value(item) for item in v) + "]"

    lines = ["[tool.importlinter]"]
    lines += [f"{key} = {value(v)}" for key, v in config.items() if key != "contracts"]
    for contract in config["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{key} = {value(v)}" for key, v in contract.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# lint-imports runs in a process of its own: outside the fast inner loop, where the gates'
# `lint-imports` does the same (docs/contributing.md).
@pytest.mark.servers
def test_the_contracts_hold() -> None:
    done = _lint_imports()
    count = len(_config()["contracts"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {count} kept, 0 broken." in done.stdout


def test_the_core_is_listed_module_by_module() -> None:
    """import-linter's wildcards replace whole names, so the core is listed: a module
    added to it must be added to the contracts too."""
    core = sorted(
        f"docstore.{path.stem}" for path in ROOT.glob("*.py") if path.stem not in ("__init__", *LAYERS)
    )
    layers = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}
    assert layers == set(LAYERS) - {"testing"}
    config = _config()
    assert _contract(config, "core-below")["source_modules"] == ["docstore", *core]
    private = [name for name in core if name.startswith("docstore._")]
    assert _contract(config, "core-public")["forbidden_modules"] == private


def test_the_core_names_no_layer() -> None:
    """No module of the core, nor schema.sql, names the agents layer or another layer
    above it (a layer's spans and metrics are named in the layer, through
    docstore.telemetry's CallTracer): the core stays usable, and readable, without them."""
    core = [path for path in ROOT.glob("*.py") if path.stem not in ("__init__", *LAYERS)]
    assert len(core) > 20
    for path in [*core, PROJECT / "schema.sql"]:
        text = path.read_text(encoding="utf-8")
        assert "agents" not in text and "aurite" not in text, path.name
        assert [layer for layer in LAYERS if f"docstore.{layer}" in text] == [], path.name


def _broken(config: dict[str, Any], name: str, tmp_path: Path) -> str:
    """lint-imports' report on ``config`` reduced to contract ``name``: it must fail."""
    done = _lint_imports(str(_write(config, tmp_path / "contracts.toml")), "--contract", name)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN" in done.stdout
    return done.stdout


@pytest.mark.servers
def test_each_contract_is_live(tmp_path: Path) -> None:
    """Each contract, changed so that the real tree breaks it, fails: it checks something."""
    config = _config()

    # A handle names its store under TYPE_CHECKING: counted, that is a cycle.
    typed = copy.deepcopy(config)
    del typed["exclude_type_checking_imports"]
    assert ".store -> ._handles " in _broken(typed, "acyclic", tmp_path)

    upside_down = copy.deepcopy(config)
    layers = _contract(upside_down, "layers")
    layers["layers"] = list(reversed(layers["layers"]))
    assert "docstore.cli is not allowed to import docstore.agents" in _broken(upside_down, "layers", tmp_path)

    with_cli = copy.deepcopy(config)
    _contract(with_cli, "independent-layers")["modules"].append("docstore.cli")
    assert "docstore.cli" in _broken(with_cli, "independent-layers", tmp_path)

    # The demo imports the agents layer: counted as core, it breaks the contract.
    with_demo = copy.deepcopy(config)
    _contract(with_demo, "core-below")["source_modules"].append("docstore.cli.demo")
    assert "docstore.cli.demo -> docstore.agents" in _broken(with_demo, "core-below", tmp_path)

    # Without its one exception, bench's imports of the core's privates break it.
    strict = copy.deepcopy(config)
    del _contract(strict, "core-public")["ignore_imports"]
    report = _broken(strict, "core-public", tmp_path)
    assert "docstore.cli.bench" in report and "docstore._sql" in report


def test_bench_is_the_one_exception_to_public_imports() -> None:
    ignored = _contract(_config(), "core-public")["ignore_imports"]
    assert all(rule.startswith("docstore.cli.bench") for rule in ignored)


def _third_party_imports() -> dict[str, set[str]]:
    """Module -> the top-level packages outside docstore it imports."""
    found: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = ["docstore", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        tops: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops.add(node.module.partition(".")[0])
        found[".".join(parts)] = tops - {"docstore"}
    return found


def _layer(module: str) -> str | None:
    return next(
        (f"docstore.{layer}" for layer in LAYERS if module.startswith(f"docstore.{layer}")),
        None,
    )


def test_an_extras_packages_are_imported_only_by_its_layer() -> None:
    imports = _third_party_imports()
    assert "langgraph" in imports["docstore.langgraph._store"]
    assert "langgraph" in imports["docstore.langgraph._checkpoint"]
    assert "langchain_core" in imports["docstore.langchain._history"]
    wrong = [
        f"{module} -> {package}"
        for module, packages in imports.items()
        for package in packages & set(EXTRA_PACKAGES)
        if _layer(module) not in EXTRA_PACKAGES[package]
    ]
    assert wrong == []
