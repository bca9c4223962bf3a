"""Random sequences of put/delete/revert/append/rewrite against a plain Python model.

After every step the whole store (every document, every version, every log item, and
the raw row counts) must equal what the model says. The model is deliberately naive:
lists of versions, no SQL, written from the documented semantics alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from psycopg import sql

from docstore import DocStore, DocumentNotFound, VersionConflict

NAMES = st.sampled_from(["a", "b", "c/1"])
VALUES = st.fixed_dictionaries({"x": st.integers(0, 3)}, optional={"y": st.sampled_from(["", "é"])})
ITEMS = st.lists(st.sampled_from(["hi", "there", "😀", "a\nb"]), min_size=1, max_size=4)


@dataclass
class Snap:
    """A snapshot document: every version as (value, is_tombstone)."""

    versions: list[tuple[dict[str, Any], bool]] = field(default_factory=list)
    deleted: bool = False

    @property
    def live(self) -> bool:
        return bool(self.versions) and not self.deleted


@dataclass
class Log:
    """A log document: every item ever appended (item N is version N), the live mark."""

    items: list[str] = field(default_factory=list)
    live_from: int = 1
    deleted: bool = False
    exists: bool = False


class StoreMachine(RuleBasedStateMachine):
    store: DocStore  # set by the test before the machine runs

    def __init__(self) -> None:
        super().__init__()
        with self.store.pool.connection() as conn:
            conn.execute(
                sql.SQL(
                    "DELETE FROM {s}.versions WHERE kind <> '_docstore'; "
                    "DELETE FROM {s}.documents WHERE kind <> '_docstore'"
                ).format(s=sql.Identifier(self.store.schema))
            )
        self.snaps: dict[str, Snap] = {}
        self.logs: dict[str, Log] = {}

    def snap(self, name: str) -> Snap:
        return self.snaps.setdefault(name, Snap())

    def log(self, name: str) -> Log:
        return self.logs.setdefault(name, Log())

    # --- snapshot kinds ------------------------------------------------------------------

    def _model_put(self, m: Snap, value: dict[str, Any]) -> int:
        if m.live and m.versions[-1][0] == value:
            return len(m.versions)  # unchanged: no version written
        m.versions.append((value, False))
        m.deleted = False
        return len(m.versions)

    @rule(name=NAMES, value=VALUES, expect=st.sampled_from(["none", "zero", "current", "stale", "ahead"]))
    def put(self, name: str, value: dict[str, Any], expect: str) -> None:
        m = self.snap(name)
        current = len(m.versions)
        expected = {"none": None, "zero": 0, "current": current, "stale": current - 1, "ahead": current + 1}[
            expect
        ]
        if expected is not None and expected < 0:
            expected = None
        if expected == 0:
            conflict = m.live
        elif expected is not None:
            conflict = expected != current
        else:
            conflict = False
        if conflict:
            with pytest.raises(VersionConflict) as err:
                self.store.put("cfg", name, value, expected_version=expected)
            assert err.value.actual == current
            return
        doc = self.store.put("cfg", name, value, expected_version=expected)
        assert doc.version == self._model_put(m, value)
        assert doc.data == value

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        m = self.snap(name)
        if not m.live:
            with pytest.raises(DocumentNotFound):
                self.store.delete("cfg", name)
            return
        assert self.store.delete("cfg", name) == len(m.versions) + 1
        m.versions.append((m.versions[-1][0], True))
        m.deleted = True

    @rule(name=NAMES, to=st.integers(0, 8))
    def revert(self, name: str, to: int) -> None:
        m = self.snap(name)
        if not 1 <= to <= len(m.versions):
            with pytest.raises(DocumentNotFound):
                self.store.revert("cfg", name, to_version=to)
            return
        doc = self.store.revert("cfg", name, to_version=to)
        assert doc.version == self._model_put(m, m.versions[to - 1][0])

    # --- log kinds -----------------------------------------------------------------------

    @rule(name=NAMES, items=ITEMS, rewrite=st.booleans())
    def append(self, name: str, items: list[str], rewrite: bool) -> None:
        m = self.log(name)
        call = self.store.rewrite if rewrite else self.store.append
        version = call("chat", name, [{"text": t} for t in items])
        before = len(m.items)
        if m.deleted or not m.exists or rewrite:
            m.live_from = before + 1
        m.items.extend(items)
        m.exists, m.deleted = True, False
        assert version == len(m.items)

    @rule(name=NAMES)
    def delete_log(self, name: str) -> None:
        m = self.log(name)
        if not m.exists or m.deleted:
            with pytest.raises(DocumentNotFound):
                self.store.delete("chat", name)
            return
        assert self.store.delete("chat", name) == len(m.items)
        m.deleted, m.live_from = True, len(m.items) + 1

    # --- the comparison, after every step ------------------------------------------------

    @invariant()
    def store_equals_model(self) -> None:
        for name, m in self.snaps.items():
            if m.live:
                doc = self.store.get("cfg", name)
                assert (doc.version, doc.data, doc.deleted) == (len(m.versions), m.versions[-1][0], False)
            else:
                with pytest.raises(DocumentNotFound):
                    self.store.get("cfg", name)
            if m.versions:
                got = [(d.version, d.data, d.deleted) for d in self.store.versions("cfg", name)]
                assert got == [(i + 1, v, tomb) for i, (v, tomb) in enumerate(m.versions)]
        live = {n for n, m in self.snaps.items() if m.live}
        assert {d.name for d in self.store.list("cfg")} == live
        for name, log in self.logs.items():
            entries = [
                (e.version, e.item["text"]) for e in self.store.read("chat", name, written_at=True).entries()
            ]
            want = (
                []
                if log.deleted
                else [(v, log.items[v - 1]) for v in range(log.live_from, len(log.items) + 1)]
            )
            assert entries == want
            if log.exists and not log.deleted:
                head = self.store.get("chat", name)
                assert (head.version, head.count) == (len(log.items), len(want))
        with self.store.pool.connection() as conn:
            counts = dict(
                conn.execute(
                    sql.SQL("SELECT kind, count(*) FROM {}.versions GROUP BY kind").format(
                        sql.Identifier(self.store.schema)
                    )
                ).fetchall()
            )
        assert counts.get("cfg", 0) == sum(len(m.versions) for m in self.snaps.values())
        assert counts.get("chat", 0) == sum(len(m.items) for m in self.logs.values())


@pytest.mark.slow
def test_random_put_delete_revert_append_sequences_match_a_plain_model(docstore_store: DocStore) -> None:
    store = docstore_store
    store.register("cfg", dict[str, Any])
    store.register("chat", dict[str, str], mode="log")
    StoreMachine.store = store
    run_state_machine_as_test(
        StoreMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
