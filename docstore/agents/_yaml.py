"""YAML in, with a bound on what its aliases expand to.

``yaml.safe_load`` builds a document whose aliases (``*name``) share the node they name,
so a few hundred bytes ("billion laughs": nine lists of nine aliases of the list before)
load at once into a value of 9**9 leaves that validating, copying or dumping expands until
memory runs out. :func:`load_yaml` composes the document's nodes first, counts what its
aliases would add, and refuses it, naming the line, before anything is built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_ALIAS_NODES", "YAMLRefused", "load_yaml"]

MAX_ALIAS_NODES = 100_000
"""How many nodes a YAML document's aliases may add to it once expanded (its own nodes
are not counted: a large file without aliases is only as large as its text)."""


class YAMLRefused(ValueError):
    """A YAML document refused for what its aliases expand to (one line: where, and why)."""


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, refusing (:class:`YAMLRefused`) a document whose aliases
    would add more than :data:`MAX_ALIAS_NODES` nodes, or that holds itself. Other YAML
    errors are PyYAML's own (``yaml.YAMLError``)."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if "*" in text:  # no alias, nothing shared: the text bounds the size
            _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        # A sequence's items, or a mapping's (key, value) pairs.
        return [part for item in value for part in (item if isinstance(item, tuple) else (item,))]
    return []


def _where(node: Any) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _check_expansion(root: Any) -> None:
    """Raise YAMLRefused when expanding ``root``'s aliases adds too many nodes."""
    # Pass one: the distinct nodes (what the text holds).
    distinct: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) not in distinct:
            distinct.add(id(node))
            todo.extend(_children(node))
    limit = len(distinct) + MAX_ALIAS_NODES
    # Pass two: each node's size once expanded, children first, stopping at the first
    # node past the limit (the sizes of a bomb grow past any memory otherwise).
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > limit:
                raise YAMLRefused(
                    f"its YAML aliases (*name) expand it by more than {MAX_ALIAS_NODES:,} "
                    f"nodes ({_where(node)}): refused, as an alias bomb would be"
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YAMLRefused(
                f"a YAML alias (*name) refers to a node that holds it ({_where(node)}): "
                "a document cannot contain itself"
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
