"""Plans name the rows they receive (docstore._rows) from the plain tuples the drivers
hand them: the statements must read the columns in the order the names say."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from docstore import DocStore, Registry
from docstore import _sql as q
from docstore._core import Core, Plan
from docstore._rows import Head, NamedHead

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


def test_the_head_statements_return_the_columns_head_names_in_order(
    docstore_factory: Callable[..., DocStore],
) -> None:
    # What the server answers, not the statements' text: a column added, dropped or
    # reordered in one of them fails here.
    store = docstore_factory()
    store.register("agent", dict)
    store.put("agent", "a", {"x": 1})
    params = {"kind": "agent", "name": "a", "names": ["a"]}
    with store.pool.connection() as conn:
        for statement, names in ((q.GET_HEAD, Head._fields), (q.GET_HEADS, NamedHead._fields)):
            cursor = conn.execute(statement.format(s=store.schema), params)
            assert cursor.description is not None
            assert tuple(column.name for column in cursor.description) == names
            assert cursor.fetchall()  # the row is there, so the names describe a real row
    assert NamedHead._fields == ("name", *Head._fields)


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
