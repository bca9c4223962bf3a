"""docstore uses only the public APIs of the libraries it builds on, which keep working
across their upgrades. The one exception is docstore/agents/aurite.py, which must reach into
the framework (it offers no injection point) and checks the framework's version.

Read from the source (AST): an import of a ``_private`` module of those libraries, and a
``._name`` access (or ``getattr(x, "_name")``) on one of their objects: a module or name
imported from them, or a variable annotated with one of their types."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "docstore"
LIBRARIES = {"pydantic", "pydantic_core", "typer", "click", "psycopg", "psycopg_pool"}
EXEMPT = {"docstore/agents/aurite.py"}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _theirs(module: str | None) -> bool:
    return (module or "").split(".")[0] in LIBRARIES


class _Finder(ast.NodeVisitor):
    """Private uses in one module, as ``line: what``."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.names: set[str] = set()  # modules and names imported from the libraries
        self.objects: set[str] = set()  # variables annotated with one of their types

    def _annotated_theirs(self, annotation: ast.expr | None) -> bool:
        return annotation is not None and any(
            isinstance(n, ast.Name) and n.id in self.names for n in ast.walk(annotation)
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _theirs(alias.name):
                if any(_is_private(part) for part in alias.name.split(".")):
                    self.found.append(f"{node.lineno}: import {alias.name}")
                self.names.add((alias.asname or alias.name).split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not _theirs(node.module):
            return
        module = node.module or ""
        if any(_is_private(part) for part in module.split(".")):
            self.found.append(f"{node.lineno}: from {module} import ...")
        for alias in node.names:
            if _is_private(alias.name):
                self.found.append(f"{node.lineno}: from {module} import {alias.name}")
            self.names.add(alias.asname or alias.name)

    def visit_arg(self, node: ast.arg) -> None:
        if self._annotated_theirs(node.annotation):
            self.objects.add(node.arg)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name) and self._annotated_theirs(node.annotation):
            self.objects.add(node.target.id)
        self.generic_visit(node)

    def _owner(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name) and (node.id in self.names or node.id in self.objects):
            return node.id
        if isinstance(node, ast.Attribute):  # typer.core.X._y, psycopg.pq._z
            return self._owner(node.value)
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = self._owner(node.value)
        if owner is not None and _is_private(node.attr):
            self.found.append(f"{node.lineno}: {ast.unparse(node)}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
            and self._owner(node.args[0]) is not None
        ):
            self.found.append(f"{node.lineno}: {ast.unparse(node)}")
        self.generic_visit(node)


def private_uses(source: str) -> list[str]:
    """The private uses of the libraries in one module's source. Two passes: the first
    learns the imported names and annotated variables, the second finds the uses."""
    tree = ast.parse(source)
    finder = _Finder()
    finder.visit(tree)
    finder.found.clear()
    finder.visit(tree)
    return finder.found


def _modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(ROOT).as_posix() not in EXEMPT:
            yield path


def test_no_module_uses_a_private_api_of_pydantic_typer_click_or_psycopg() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{use}"
        for path in _modules()
        for use in private_uses(path.read_text(encoding="utf-8"))
    ]
    assert offences == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        (
            "from pydantic import TypeAdapter\ndef f(adapter: TypeAdapter[int]):\n    return adapter._type\n",
            ["3: adapter._type"],
        ),
        ("from click._utils import UNSET\n", ["1: from click._utils import ..."]),
        ("import psycopg._encodings\n", ["1: import psycopg._encodings"]),
        ("import typer\nx = typer.core._split_opt\n", ["2: typer.core._split_opt"]),
        (
            "import psycopg\nconn: psycopg.Connection[object]\nconn._check()\n",
            ["3: conn._check"],
        ),
        ("import click\ngetattr(click, '_compat')\n", ["2: getattr(click, '_compat')"]),
        # Our own private names, and dunders of theirs, are no offence.
        (
            "import typer\nfrom . import _out\nclass A:\n    def f(self):\n"
            "        return self._x, _out._y, typer.__name__\n",
            [],
        ),
    ],
)
def test_the_check_finds_each_kind_of_private_use(source: str, found: list[str]) -> None:
    assert private_uses(source) == found


def test_the_only_exempt_module_is_the_framework_adapter_and_it_exists() -> None:
    assert [p for p in EXEMPT if (ROOT / p).is_file()] == ["docstore/agents/aurite.py"]
