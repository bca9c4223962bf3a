"""Plans: the I/O-free form of every store operation.

A plan is a generator that yields :class:`Stmt` objects, receives each one's result rows,
and returns the operation's value. The sync store drives plans with ``conn.execute``, the
async store with ``await conn.execute``; the logic lives only in the plans.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]
Rows = list[Row]
Plan = Generator["Stmt", Rows, T]
# A sequence of operations, each run on its own (in a transaction of its own when
# atomic): the program receives each one's result, or has its error thrown in.
Program = Generator["Op[Any]", Any, T]

OnInvalid = Literal["raise", "skip"]


# Not frozen: a frozen dataclass sets each field through object.__setattr__, a cost every
# call pays (plans and drivers never change them).
@dataclass(slots=True)
class Stmt:
    """One statement to run, with its parameters.

    ``more``: statements to send right after this one in pipeline mode, without waiting
    for each one's result; the iterator is drawn one statement at a time, so the work of
    building the next overlaps the server running the previous. The plan then receives
    the rows of all of them, in order. A plan yielding one runs atomically (Op.atomic).
    ``sends``: bytes of documents among the parameters (a cursor keeps its last
    parameters, so a pooled connection does not keep one that sent many). ``texts``: the
    columns of its rows that may hold documents, which the driver measures for the same
    reason (None: any column may; ``()``: none does, as a write's version and times).
    """

    # In this order: the statements of the common calls give them positionally (a
    # keyword argument costs each call more than the rest of the constructor).
    query: str
    params: Mapping[str, Any] | None = None
    sends: int = 0
    texts: tuple[int, ...] | None = None
    more: Iterator[Stmt] | None = None


@dataclass(slots=True)
class Op(Generic[T]):
    """A plan with what the driver must know to run it.

    ``atomic``: several writes that must commit together (the driver opens a transaction).
    ``read_only``: safe to run again on a fresh connection when the first one was dead.
    ``on_primary``: a read that must not go to a read replica (the change feed's position).
    ``keyed``: a write with an idempotency key, so safe to run again as well (it finds
    its key if the first attempt committed).
    ``layout``: a write that needs the store at this release's DDL version (checked
    before the first write of a pool, docstore._ddl); False for the DDL that makes it so.
    ``own_connection``: a step of an upgrade, run on a connection of its own rather than
    the pool's (an index built CONCURRENTLY cannot run in a transaction, nor under the
    pool's statement_timeout).
    """

    plan: Callable[[], Plan[T]]
    kind: str = ""
    name: str | None = None
    atomic: bool = False
    read_only: bool = False
    on_primary: bool = False
    keyed: bool = False
    layout: bool = True
    own_connection: bool = False


MAX_VERSION = 2**63 - 1
"""The highest version a document can have: PostgreSQL's bigint."""


def check_expected(expected: int | None) -> None:
    """Refuse an ``expected_version`` that is neither None, 0 nor a positive int (up to
    :data:`MAX_VERSION`)."""
    # bool is an int to Python, but True would pass for version 1 and fail later in SQL.
    if expected is not None and (
        not isinstance(expected, int) or isinstance(expected, bool) or not 0 <= expected <= MAX_VERSION
    ):
        raise ValueError(
            f"expected_version must be None, 0 or a positive int up to 2**63-1, not {expected!r}"
        )


def one_statement(stmt: Stmt) -> Plan[Rows]:
    """A plan of one statement whose rows are the result."""
    rows = yield stmt
    return rows
