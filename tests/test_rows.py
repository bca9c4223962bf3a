"""Plans name the rows they receive (docstore._rows) from the plain tuples the drivers
hand them: the statements must read the columns in the order the names say."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from docstore import Registry
from docstore import _sql as q
from docstore._core import Core, Plan
from docstore._rows import HEAD_COLUMNS, Head, NamedHead

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def finish(plan: Plan[Any], *results: list[tuple[Any, ...]]) -> Any:
    """Drive a plan, answering its statements with canned rows, in order."""
    next(plan)
    try:
        for rows in results:
            plan.send(rows)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the plan asked for more statements than it was given rows")


def test_the_head_statements_read_the_columns_head_names() -> None:
    assert NamedHead._fields == ("name", *Head._fields)
    assert HEAD_COLUMNS.split(", ") == ["data::text" if field == "data" else field for field in Head._fields]
    assert q.GET_HEAD.startswith(f"SELECT {HEAD_COLUMNS} FROM")
    for statement in (q.GET_HEADS, q.LIST_HEADS):
        assert f"SELECT name, {HEAD_COLUMNS} FROM" in statement


def test_plans_take_plain_tuples_and_read_them_by_name() -> None:
    kinds = Registry()
    kinds.register("agent", dict)
    kinds.register("chat", dict, mode="log")
    core = Core(kinds, "docstore")
    doc = finish(core.get("agent", "a", None).plan(), [(3, 1, '{"x": 1}', NOW, NOW, False, "s", 1)])
    assert (doc.version, doc.data, doc.deleted, doc.count) == (3, {"x": 1}, False, None)
    head = finish(core.get("chat", "c", None).plan(), [(7, 1, '{"t": 2}', NOW, NOW, False, "l", 5)])
    assert (head.version, head.data, head.count) == (7, {"t": 2}, 3)
    many = finish(
        core.get_many("agent", ["b", "a"]).plan(),
        [("a", 1, 1, "{}", NOW, NOW, False, "s", 1), ("b", 2, 1, '{"y": 0}', NOW, NOW, False, "s", 1)],
    )
    assert [(d.name, d.version) for d in many.values()] == [("b", 2), ("a", 1)]
