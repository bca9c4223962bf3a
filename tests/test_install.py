"""How docstore installs: the wheel, its dependencies and extras, and what works without
the extras (a bare `pip install docstore` in a fresh virtual environment)."""

from __future__ import annotations

import email
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import docstore

# Builds wheels and virtual environments: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(source: Path, out: Path) -> Path:
    """The wheel pip builds from ``source`` (the tree or an sdist), without isolation."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    [built] = out.glob("docstore-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


def _requirements(wheel: Path) -> dict[str | None, set[str]]:
    """extra (None: the core) -> names of the distributions it requires."""
    with zipfile.ZipFile(wheel) as archive:
        [meta] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.message_from_bytes(archive.read(meta))
    out: dict[str | None, set[str]] = {}
    for line in message.get_all("Requires-Dist") or []:
        req = Requirement(line)
        extra = None
        if req.marker is not None:
            extra = str(req.marker).split("==")[1].strip().strip("'\"")
        out.setdefault(extra, set()).add(req.name.lower())
    return out


def test_wheel_ships_py_typed_the_schema_the_licence_and_both_entry_points(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(points).decode()
        [licence] = [n for n in names if n.endswith(".dist-info/licenses/docs/LICENSE")]
        licence_text = archive.read(licence).decode()
        [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
        message = email.message_from_bytes(archive.read(meta))
    assert {
        "docstore/py.typed",
        "docstore/schema.sql",
        "docstore/agents/agents.sql",
        "docstore/testing.py",
    } <= names
    assert licence_text == (ROOT / "docs/LICENSE").read_text(encoding="utf-8")
    assert licence_text.startswith("MIT License")
    assert message["License-Expression"] == "MIT"
    assert message["Version"] == docstore.__version__  # one source: pyproject reads it
    assert message.get_all("License-File") == ["docs/LICENSE"]
    assert "docstore = docstore.cli:main" in entry_points
    assert "[pytest11]\ndocstore = docstore.testing" in entry_points


def test_core_needs_only_psycopg_pydantic_orjson_and_extras_bring_only_their_own(wheel: Path) -> None:
    needs = _requirements(wheel)
    assert needs[None] == {"psycopg", "pydantic", "orjson"}
    assert needs["cli"] == {"typer", "rich", "pyyaml"}
    assert needs["yaml"] == {"pyyaml"}
    assert needs["testing"] == {"pytest", "pytest-postgresql", "pytest-asyncio"}
    assert needs["otel"] == {"opentelemetry-api"}
    # The development tools are a dependency group, never published: no extra pins the
    # framework, and no extra is named dev or test any more (docs/CHANGELOG.md).
    assert set(needs) == {None, "cli", "yaml", "testing", "otel", "embedded", "langgraph", "langchain"}
    assert "aurite" not in set().union(*needs.values())


def test_the_development_tools_are_a_dependency_group_the_set_up_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = {Requirement(r).name.lower() for r in project["dependency-groups"]["dev"]}
    assert {"aurite", "ruff", "mypy", "hypothesis", "opentelemetry-sdk", "pytest-xdist"} <= dev
    assert "dev" not in project["project"]["optional-dependencies"]
    assert "--group dev" in (ROOT / ".ci/setup").read_text(encoding="utf-8")


@pytest.mark.framework
def test_the_suite_runs_beside_aurite_0_4_2_and_the_typer_it_allows() -> None:
    # The test environment is `pip install --group dev` (.ci/setup), which holds aurite==0.4.2: every
    # CLI and plugin test of the suite therefore runs with the typer aurite pins.
    assert importlib.metadata.version("aurite") == "0.4.2"
    aurite_typer = next(
        Requirement(r) for r in importlib.metadata.requires("aurite") or [] if Requirement(r).name == "typer"
    )
    typer_version = importlib.metadata.version("typer")
    assert typer_version in aurite_typer.specifier
    ours = next(
        Requirement(r)
        for r in importlib.metadata.requires("docstore") or []
        if Requirement(r).name == "typer"
    )
    assert typer_version in ours.specifier
    assert "0.16.0" in SpecifierSet(str(ours.specifier))


_PLAIN_TEST = "def test_plain():\n    assert 1 + 1 == 2\n"
_FIXTURE_TEST = "def test_uses_the_store(docstore_store):\n    pass\n"
_LIBRARY = """
import json, pathlib, sys, tempfile
from docstore import DocStore
from docstore.agents import load_configs
d = pathlib.Path(tempfile.mkdtemp())
(d / "a.json").write_text(json.dumps([{"type": "agent", "name": "a"}]))
(d / "b.yaml").write_text("- {type: agent, name: b}")
loaded = load_configs(d)
print(sorted(loaded.agents), [p.message for p in loaded.problems])
"""


@pytest.mark.slow
def test_a_bare_install_runs_the_library_and_says_which_extra_the_rest_needs(
    wheel: Path, tmp_path: Path, docstore_dsn: str
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # pytest is there for the user's own reasons; docstore's testing extra is not.
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel), "pytest"],
        check=True,
        capture_output=True,
        text=True,
    )
    modules = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print([m for m in ('typer', 'rich', "
            "'yaml', 'pytest_postgresql', 'pytest_asyncio', 'opentelemetry') if u.find_spec(m)])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert modules.strip() == "[]"

    library = subprocess.run([str(python), "-c", _LIBRARY], capture_output=True, text=True)
    assert library.returncode == 0, library.stderr
    assert library.stdout.startswith("['a'] [")
    # docstore is installed from a clone or a wheel built from one: the hint names the wheel.
    assert f"pip install '{wheel}[yaml]'" in library.stdout

    script = subprocess.run([str(venv / "bin" / "docstore"), "ls", "agent"], capture_output=True, text=True)
    assert script.returncode == 1 and "Traceback" not in script.stderr
    assert f"pip install '{wheel}[cli]'" in script.stderr

    project = tmp_path / "project"
    project.mkdir()
    (project / "test_plain.py").write_text(_PLAIN_TEST)
    (project / "test_fixture.py").write_text(_FIXTURE_TEST)
    env = {k: v for k, v in os.environ.items() if k != "DOCSTORE_TEST_URL"}
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
    )
    # 1: a test failed; pytest's own errors (a plugin that cannot load) are 3 or 4.
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed, 1 error" in run.stdout  # the fixture fails in its set-up
    assert f"pip install '{wheel}[testing]'" in run.stdout

    # The command under the newest typer its range allows (the suite itself runs on the
    # typer aurite pins): README's first command installs it so.
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[cli]"],
        check=True,
        capture_output=True,
        text=True,
    )
    command = subprocess.run(
        [
            str(venv / "bin" / "docstore"),
            "--json",
            "--dsn",
            docstore_dsn,
            "--schema",
            "no_such_schema",
            "ls",
            "agent",
        ],
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in command.stderr, command.stderr
    assert command.returncode == 1 and '"SchemaMissing"' in command.stdout + command.stderr


def test_the_sdist_builds_a_wheel_with_the_same_files(wheel: Path, tmp_path: Path) -> None:
    """The source distribution holds what a wheel is built from: pip builds one from it
    that ships exactly the files of the wheel built from the tree."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    [sdist] = tmp_path.glob("docstore-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "schema.sql", "README.md", "docs/LICENSE", "docstore/py.typed"} <= names
    rebuilt = build_wheel(sdist, tmp_path / "from-sdist")
    with zipfile.ZipFile(wheel) as a, zipfile.ZipFile(rebuilt) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())


def test_an_extra_is_named_the_way_docstore_was_installed() -> None:
    """This suite runs on docstore installed editable from its clone (README's commands):
    a hint names that clone's path."""
    from docstore.extras import install_extra

    assert install_extra("cli") == f"pip install -e '{ROOT}[cli]'"
