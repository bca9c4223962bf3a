"""How docstore's modules import one another: no cycles, and layers that use each other
only through their public modules.

Read from the source's syntax trees, every import statement counted, also the ones
inside functions (an import deferred to call time still ties two modules together), but
not those under ``if TYPE_CHECKING:``, which never run: a handle naming the store that
made it in its annotations (docstore._handles_async) is no cycle at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import docstore

ROOT = Path(docstore.__file__).resolve().parent

# The layers on top of the core. The core imports none of them; from outside a layer,
# only its public modules (no `_` in their path below the layer) are imported.
LAYERS = (
    "docstore.agents",
    "docstore.cli",
    "docstore.bench",
    "docstore.demo",
    "docstore.langgraph",
    "docstore.langchain",
)
# Layers that use the core only through its public modules too (the core's privates are
# free to change under them).
CORE_PUBLIC_ONLY = ("docstore.langgraph", "docstore.langchain")
# Optional extras' third-party packages, and the layers that may import each: the core
# and the other layers must import without them.
EXTRA_PACKAGES = {
    "langgraph": ("docstore.langgraph",),
    "langchain_core": ("docstore.langgraph", "docstore.langchain"),
}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["docstore", *path.relative_to(ROOT).with_suffix("").parts]
        package = parts[-1] == "__init__"
        if package:
            parts.pop()
        found[".".join(parts)] = (path, package)
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the docstore modules it imports (a name imported from a package counts
    as its submodule when it is one)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, package) in modules.items():
        here = name if package else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")
                    base = ".".join(
                        parts[: len(parts) - node.level + 1] + ([node.module] if node.module else [])
                    )
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``."""
    found: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in (
                "TYPE_CHECKING",
                "typing.TYPE_CHECKING",
            ):
                todo.extend(child.orelse)
            else:
                todo.append(child)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> str | None:
    return next((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), None)


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    graph = _graph()
    assert {"docstore.store", "docstore.cli._kinds", "docstore.agents.storage", "docstore.demo"} <= set(graph)
    assert "docstore._core" in graph["docstore.store"]
    assert "docstore.cli._kinds" in graph["docstore.cli._store"]
    # A cycle made up for the purpose is found.
    assert _cycles({**graph, "docstore.kinds": graph["docstore.kinds"] | {"docstore.store"}})


def test_no_module_of_docstore_imports_itself_through_others() -> None:
    assert _cycles(_graph()) == []


def test_the_core_imports_none_of_the_layers_on_top_of_it() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if _layer(module) is None and module != "docstore._script"  # the command's entry point
        for target in targets
        if _layer(target) is not None
    ]
    assert wrong == []


def test_a_layer_is_used_from_outside_only_through_its_public_modules() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) not in (None, _layer(module))
        and any(part.startswith("_") for part in target.split(".")[1:])
    ]
    assert wrong == []


def test_some_layers_use_the_core_only_through_its_public_modules() -> None:
    graph = _graph()
    assert "docstore" in graph["docstore.langgraph._store"]
    wrong = [
        f"{module} -> {target}"
        for module, targets in graph.items()
        if _layer(module) in CORE_PUBLIC_ONLY
        for target in targets
        if _layer(target) is None and any(part.startswith("_") for part in target.split(".")[1:])
    ]
    assert wrong == []
    # A made-up import of a private core module is caught.
    graph["docstore.langchain._history"].add("docstore._core")
    assert any(
        t.startswith("docstore._") for m, ts in graph.items() if _layer(m) in CORE_PUBLIC_ONLY for t in ts
    )


def _third_party_imports() -> dict[str, set[str]]:
    """Module -> the top-level packages outside docstore it imports."""
    found: dict[str, set[str]] = {}
    for name, (path, _) in _modules().items():
        tops: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops.add(node.module.partition(".")[0])
        found[name] = tops - {"docstore"}
    return found


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
