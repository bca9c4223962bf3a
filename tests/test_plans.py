"""The store's plans driven without a database: canned rows for the branches that races
reach only by chance (tests/test_races.py runs the real thing).

A plan (docstore._plan) yields statements and receives their rows; here each statement
is answered from a script: writes in order, reads by which query they are. These are
tests of the plans' logic (what they conclude from the rows they get); every behaviour
against PostgreSQL itself is tested on a real server elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
import psycopg
import pytest
from psycopg import errors as pge
from pydantic import BaseModel

from docstore import _sql as q
from docstore._core import Core, Op, Rows, Stmt
from docstore.errors import (
    Contention,
    DatabaseUnavailable,
    DocStoreError,
    DocumentInvalid,
    DocumentNotFound,
    IdempotencyKeyReused,
    KeyedWriteLost,
    KindMismatch,
    OutcomeUnknown,
    VersionConflict,
)
from docstore.kinds import Registry

T = TypeVar("T")

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


class Counter(BaseModel):
    n: int


class Message(BaseModel):
    text: str


class ChatMeta(BaseModel):
    agent: str  # required: a new log needs meta=


@pytest.fixture
def core() -> Core:
    kinds = Registry()
    kinds.register("counter", Counter)
    kinds.register("chat", Message, mode="log", meta=ChatMeta)
    return Core(kinds, "plans")


def head(
    version: int,
    value: Any = None,
    *,
    sv: int = 1,
    deleted: bool = False,
    mode: str = "s",
    live_from: int = 1,
) -> tuple[Any, ...]:
    """A row of GET_HEAD: version, schema_version, data (text), created, updated,
    deleted, mode, live_from."""
    data = orjson.dumps({"n": version} if value is None else value).decode()
    return (version, sv, data, T0, T1, deleted, mode, live_from)


class Changing:
    """Answers for a read that change from one time it runs to the next (the last one
    holds after)."""

    def __init__(self, *answers: Rows | Callable[[Stmt], Rows]) -> None:
        self.answers = list(answers)

    def next(self, stmt: Stmt) -> Rows:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(stmt) if callable(answer) else answer


@dataclass
class Script:
    """What the database answers: each write statement takes the next of ``writes``;
    a read is answered by its query's name in ``reads`` (the same rows each time it
    runs, or a :class:`Changing`)."""

    writes: list[Rows] = field(default_factory=list)
    reads: Mapping[str, Rows | Changing] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    """The statements the plan ran, by name ("write" for a write)."""

    def run(self, core: Core, op: Op[T]) -> T:
        plan = op.plan()
        try:
            stmt = next(plan)
            while True:
                stmt = plan.send(self._answer(core, stmt))
        except StopIteration as stop:
            assert not self.writes, f"the plan returned with writes left unanswered: {self.writes}"
            result: T = stop.value
            return result

    def _answer(self, core: Core, stmt: Stmt) -> Rows:
        name = _name(core, stmt)
        self.seen.append(name)
        if name == "write":
            assert self.writes, f"an unexpected write after {self.seen[:-1]}"
            return self.writes.pop(0)
        assert name in self.reads, f"no answer for {name} (after {self.seen[:-1]})"
        answer = self.reads[name]
        return answer.next(stmt) if isinstance(answer, Changing) else answer


_READS = ("GET_HEAD", "GET_HEADS", "KEY_LOOKUP", "KEY_RECORD", "LOCK_META", "PRUNE_DOCUMENTS", "PRUNE_KEYS")


def _name(core: Core, stmt: Stmt) -> str:
    for name in _READS:
        if stmt.query == core.sql(getattr(q, name)):
            return name
    if stmt.query == "SELECT now()":
        return "now"
    return "write"


def _key_row(
    stmt: Stmt, version: int, *, op: str = "put", kind: str = "counter", name: str = "c", wrote: bool = True
) -> Rows:
    """KEY_LOOKUP's row for the write that holds the statement's key (the same request, which wrote)."""
    assert stmt.params is not None
    return [(op, kind, name, version, stmt.params["idem_request"], T0, T1, wrote)]


def _caught(run: Callable[[], object]) -> BaseException:
    with pytest.raises(DocStoreError) as info:
        run()
    return info.value


# --- put ---------------------------------------------------------------------------------


def test_a_put_whose_expected_version_no_longer_matches_is_a_conflict_naming_both(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": [head(5)]})
    error = _caught(lambda: script.run(core, core.put("counter", "c", {"n": 9}, 3)))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (3, 5)
    assert script.seen == ["write", "GET_HEAD"]  # nothing written again after the conflict


def test_a_put_expecting_a_version_of_a_document_gone_meanwhile_is_a_conflict_with_0(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": []})
    error = _caught(lambda: script.run(core, core.put("counter", "c", {"n": 9}, 3)))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (3, 0)


def test_a_put_expecting_a_version_of_a_document_deleted_meanwhile_is_a_conflict(core: Core) -> None:
    # Another writer's delete moved it from version 3 to a tombstone at 4 before this write.
    script = Script(writes=[[]], reads={"GET_HEAD": [head(4, {"n": 9}, deleted=True)]})
    error = _caught(lambda: script.run(core, core.put("counter", "c", {"n": 9}, 3)))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (3, 4)


def test_a_create_that_loses_the_race_for_a_new_name_is_a_conflict(core: Core) -> None:
    # expected_version=0: the other writer's insert committed first, at version 1.
    script = Script(writes=[[]], reads={"GET_HEAD": [head(1)]})
    error = _caught(lambda: script.run(core, core.put("counter", "c", {"n": 9}, 0)))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (0, 1)
    assert "expected not to exist, but it is at version 1" in str(error)


def test_an_upsert_that_loses_the_race_to_an_equal_value_returns_the_winner_and_writes_nothing(
    core: Core,
) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": [head(1, {"n": 9})]})
    doc = script.run(core, core.put("counter", "c", {"n": 9}, None))
    assert (doc.version, doc.data, doc.created_at, doc.updated_at) == (1, Counter(n=9), T0, T1)
    assert doc.changed is False  # the winner wrote it, not this put
    assert script.seen == ["write", "GET_HEAD"]


def test_an_upsert_whose_document_vanished_before_the_read_writes_again(core: Core) -> None:
    # Purged between the write (which found it at an equal value) and the read.
    script = Script(writes=[[], [(1, T1, T1, True)]], reads={"GET_HEAD": []})
    doc = script.run(core, core.put("counter", "c", {"n": 9}, None))
    assert doc.version == 1 and doc.changed is True and script.seen == ["write", "GET_HEAD", "write"]


def test_an_upsert_whose_document_was_deleted_before_the_read_writes_again(core: Core) -> None:
    script = Script(writes=[[], [(4, T1, T1, True)]], reads={"GET_HEAD": [head(3, {"n": 9}, deleted=True)]})
    doc = script.run(core, core.put("counter", "c", {"n": 9}, None))
    assert doc.version == 4 and doc.changed is True and script.seen == ["write", "GET_HEAD", "write"]


def test_an_upsert_that_keeps_losing_gives_up_after_three_attempts_and_says_so(core: Core) -> None:
    script = Script(writes=[[], [], []], reads={"GET_HEAD": []})
    error = _caught(lambda: script.run(core, core.put("counter", "c", {"n": 9}, None)))
    assert type(error) is Contention and "kept racing with other writers" in str(error)
    assert script.seen == ["write", "GET_HEAD"] * 3


def test_a_put_on_a_name_stored_as_a_log_is_a_kind_mismatch_not_a_conflict(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": [head(2, {"agent": "a"}, mode="l")]})
    error = _caught(lambda: script.run(core, core.put("counter", "c", {"n": 9}, None)))
    assert isinstance(error, KindMismatch) and "stored as a log document" in str(error)


def test_a_keyed_put_whose_key_committed_while_it_waited_returns_that_write(core: Core) -> None:
    # The key was not there when looked up; the attempt holding it committed while this
    # one waited for the row lock, so this write found nothing to do: it is that write.
    lookups = Changing([], lambda stmt: _key_row(stmt, 4))
    script = Script(writes=[[]], reads={"KEY_LOOKUP": lookups})
    doc = script.run(core, core.put("counter", "c", {"n": 9}, None, idempotency_key="k1"))
    assert (doc.version, doc.created_at, doc.updated_at, doc.changed) == (4, T0, T1, True)
    assert script.seen == ["KEY_LOOKUP", "write", "KEY_LOOKUP"]


def test_a_keyed_put_of_an_unchanged_value_records_its_key_unless_another_did(core: Core) -> None:
    recorded = Script(
        writes=[[]], reads={"KEY_LOOKUP": [], "GET_HEAD": [head(2, {"n": 9})], "KEY_RECORD": [(1,)]}
    )
    doc = recorded.run(core, core.put("counter", "c", {"n": 9}, None, idempotency_key="k1"))
    assert doc.version == 2 and doc.changed is False
    assert recorded.seen == ["KEY_LOOKUP", "write", "KEY_LOOKUP", "GET_HEAD", "KEY_RECORD"]
    # The same key recorded meanwhile (by a retry of this request): its answer holds.
    lookups = Changing([], [], lambda stmt: _key_row(stmt, 7, wrote=False))
    raced = Script(
        writes=[[]], reads={"KEY_LOOKUP": lookups, "GET_HEAD": [head(2, {"n": 9})], "KEY_RECORD": []}
    )
    doc = raced.run(core, core.put("counter", "c", {"n": 9}, None, idempotency_key="k1"))
    assert doc.version == 7 and doc.changed is False


def test_a_key_held_by_another_request_is_refused_before_anything_is_written(core: Core) -> None:
    other = [("put", "counter", "c", 3, "another digest", T0, T1, True)]
    script = Script(reads={"KEY_LOOKUP": other})
    error = _caught(lambda: script.run(core, core.put("counter", "c", {"n": 9}, None, idempotency_key="k1")))
    assert isinstance(error, IdempotencyKeyReused) and "with other data" in str(error)
    assert script.seen == ["KEY_LOOKUP"]


# --- append ------------------------------------------------------------------------------


def _log(version: int, live_from: int = 1, deleted: bool = False) -> tuple[Any, ...]:
    return head(version, {"agent": "a"}, mode="l", live_from=live_from, deleted=deleted)


def test_an_append_whose_head_moved_is_a_conflict_naming_both_versions(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": [_log(5)]})
    error = _caught(lambda: script.run(core, core.append("chat", "s", [{"text": "hi"}], 3, None)))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (3, 5)
    assert script.seen.count("write") == 1


def test_an_append_expecting_a_count_the_log_no_longer_has_says_it_was_cleared(core: Core) -> None:
    # At the expected version still, but a clear left only 3 of its 5 items live.
    script = Script(writes=[[]], reads={"GET_HEAD": [_log(5, live_from=3)]})
    op = core.append("chat", "s", [{"text": "hi"}], 5, None, expected_count=5)
    error = _caught(lambda: script.run(core, op))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (5, 5)
    assert "expected 5 live items at version 5, but it has 3" in str(error)


def test_an_append_expecting_a_version_of_a_deleted_log_is_a_conflict(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": [_log(4, live_from=5, deleted=True)]})
    error = _caught(lambda: script.run(core, core.append("chat", "s", [{"text": "hi"}], 4, None)))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (4, 4)


def test_an_append_creating_a_log_that_another_writer_created_first_is_a_conflict(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": [_log(2)]})
    error = _caught(lambda: script.run(core, core.append("chat", "s", [{"text": "hi"}], 0, {"agent": "a"})))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (0, 2)


def test_an_append_without_meta_to_a_log_that_does_not_exist_asks_for_meta(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": []})
    error = _caught(lambda: script.run(core, core.append("chat", "s", [{"text": "hi"}], None, None)))
    assert isinstance(error, DocumentInvalid) and "a new log needs meta=" in str(error)


def test_a_keyed_append_whose_key_committed_while_it_waited_returns_that_version(core: Core) -> None:
    lookups = Changing([], lambda stmt: _key_row(stmt, 12, op="append", kind="chat", name="s"))
    script = Script(writes=[[]], reads={"KEY_LOOKUP": lookups})
    op = core.append("chat", "s", [{"text": "hi"}], None, {"agent": "a"}, idempotency_key="k2")
    assert script.run(core, op) == 12
    assert script.seen == ["KEY_LOOKUP", "write", "KEY_LOOKUP"]


# --- delete, clear -----------------------------------------------------------------------


def test_a_delete_expecting_an_old_version_is_a_conflict(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": [head(4)]})
    error = _caught(lambda: script.run(core, core.delete("counter", "c", 2)))
    assert isinstance(error, VersionConflict) and (error.expected, error.actual) == (2, 4)


def test_a_delete_of_a_document_already_deleted_says_not_found_deleted(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": [head(4, deleted=True)]})
    error = _caught(lambda: script.run(core, core.delete("counter", "c", None)))
    assert isinstance(error, DocumentNotFound) and str(error).endswith("not found: deleted")


def test_a_clear_of_a_log_that_does_not_exist_says_not_found(core: Core) -> None:
    script = Script(writes=[[]], reads={"GET_HEAD": []})
    error = _caught(lambda: script.run(core, core.clear("chat", "s", None)))
    assert isinstance(error, DocumentNotFound)


# --- put_many ----------------------------------------------------------------------------


def test_put_many_reads_the_heads_of_the_names_it_left_unchanged(core: Core) -> None:
    written: Rows = [("a", 2, T1, T1)]
    heads: Rows = [("b", *head(1, {"n": 2}))]
    script = Script(writes=[written], reads={"GET_HEADS": heads})
    docs = script.run(core, core.put_many("counter", {"b": {"n": 2}, "a": {"n": 1}}))
    assert [(d.name, d.version, d.data) for d in docs] == [("b", 1, Counter(n=2)), ("a", 2, Counter(n=1))]
    assert script.seen == ["write", "GET_HEADS"]


def test_put_many_refuses_a_name_stored_as_a_log(core: Core) -> None:
    heads: Rows = [("b", *head(1, {"agent": "x"}, mode="l"))]
    script = Script(writes=[[]], reads={"GET_HEADS": heads})
    error = _caught(lambda: script.run(core, core.put_many("counter", {"b": {"n": 2}})))
    assert isinstance(error, KindMismatch)


# --- prune -------------------------------------------------------------------------------


def test_prune_deletes_in_batches_until_one_comes_back_short(core: Core) -> None:
    batches = Changing([(1,), (2,)], [(3,), (4,)], [(5,)])
    done: list[int] = []
    script = Script(reads={"now": [(T1,)], "PRUNE_DOCUMENTS": batches, "PRUNE_KEYS": []})
    op = core.prune("counter", timedelta(days=1), None, batch_size=2, progress=done.append)
    assert script.run(core, op) == 5
    assert done == [2, 4, 5]
    assert script.seen == ["now", *["PRUNE_DOCUMENTS"] * 3, "PRUNE_KEYS"]


# --- failures: retry or raise ------------------------------------------------------------


def _write(core: Core, keyed: bool = False) -> Op[Any]:
    return core.put("counter", "c", {"n": 1}, None, idempotency_key="k" if keyed else None)


def _read(core: Core) -> Op[Any]:
    return core.get("counter", "c", None)


def test_a_deadlock_or_serialization_failure_is_run_again_twice_then_raised(core: Core) -> None:
    for exc in (pge.DeadlockDetected("deadlock detected"), pge.SerializationFailure("could not serialize")):
        assert core.failure(exc, _write(core), 1, False) is None
        assert core.failure(exc, _write(core), 2, False) is None
        error = core.failure(exc, _write(core), 3, False)
        assert type(error) is Contention and "through 3 attempts" in str(error)


def test_a_unique_violation_is_run_again_only_for_a_keyed_write(core: Core) -> None:
    exc = pge.UniqueViolation("duplicate key")
    assert core.failure(exc, _write(core, keyed=True), 1, False) is None
    assert core.failure(exc, _write(core, keyed=True), 2, False) is None
    assert isinstance(core.failure(exc, _write(core, keyed=True), 3, False), Contention)
    unkeyed = core.failure(exc, _write(core), 1, False)
    assert isinstance(unkeyed, DocStoreError) and not isinstance(unkeyed, Contention)


def test_a_broken_connection_reruns_reads_and_keyed_writes_but_not_unkeyed_ones(core: Core) -> None:
    broken = psycopg.OperationalError("server closed the connection unexpectedly")
    assert core.failure(broken, _read(core), 1, False) is None
    assert core.failure(broken, _write(core, keyed=True), 1, False) is None
    assert isinstance(core.failure(broken, _read(core), 2, False), DatabaseUnavailable)
    # An unkeyed write that was sent may have committed: its outcome is unknown.
    unknown = core.failure(broken, _write(core), 1, False)
    assert isinstance(unknown, OutcomeUnknown) and "idempotency_key" in str(unknown)
    # Not sent (no connection was had): nothing reached the server, safe to retry.
    unsent = core.failure(broken, _write(core), 1, False, sent=False)
    assert isinstance(unsent, DatabaseUnavailable) and not isinstance(unsent, OutcomeUnknown)


def test_a_statement_timeout_is_never_run_again(core: Core) -> None:
    cancelled = pge.QueryCanceled("canceling statement due to statement timeout")
    error = core.failure(cancelled, _read(core), 1, False)
    assert isinstance(error, DatabaseUnavailable) and "statement cancelled" in str(error)


def test_inside_a_transaction_nothing_is_run_again(core: Core) -> None:
    for exc in (pge.DeadlockDetected("deadlock"), psycopg.OperationalError("gone")):
        assert core.failure(exc, _read(core), 1, True) is not None
    lost = core.failure(pge.UniqueViolation("duplicate key"), _write(core, keyed=True), 1, True)
    assert type(lost) is KeyedWriteLost and "run it again" in str(lost)


def test_an_unchanged_put_is_one_statement(core: Core) -> None:
    # The statement itself returns the head that holds the value (q.PUT_SAME): no read.
    script = Script(writes=[[(5, T0, T1, False)]])
    doc = script.run(core, core.put("counter", "c", {"n": 9}, None))
    assert (doc.version, doc.changed, doc.created_at, doc.updated_at) == (5, False, T0, T1)
    assert script.seen == ["write"]
    assert "UNION ALL" in core._put_sql(core.kinds.get("counter"), None, False)
    assert "UNION ALL" in core._put_sql(core.kinds.get("counter"), 5, False)
    # Keyed, it records its key for such a head; expected 0 finds a conflict instead.
    assert "UNION ALL" not in core._put_sql(core.kinds.get("counter"), None, True)
    assert "UNION ALL" not in core._put_sql(core.kinds.get("counter"), 0, False)
