"""restore(): a delete undone, for snapshot and log kinds; purge and prune are for good."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from conftest import count_rows
from pydantic import BaseModel

from docstore import DocStore, DocumentNotFound, KindMismatch, VersionConflict


class Msg(BaseModel):
    role: str
    content: str


def msgs(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": t} for t in texts]


@pytest.fixture
def kinds(store: Any) -> Any:
    store.register("chat", Msg, mode="log")
    store.register("cfg", dict)
    return store


def test_a_deleted_log_comes_back_with_the_items_it_had(kinds: Any) -> None:
    store = kinds
    store.append("chat", "c", msgs("a", "b", "c"))
    store.rewrite("chat", "c", msgs("summary", "d"))  # live: versions 4 and 5
    store.delete("chat", "c")
    assert store.read("chat", "c") == []
    # prune_versions keeps a deleted log's live items: they are what restore brings back.
    assert store.prune_versions("chat", keep_last=1) == 3
    assert store.restore("chat", "c") == 5
    head = store.get("chat", "c")
    assert (head.version, head.count, head.deleted) == (5, 2, False)
    assert [m.content for m in store.read("chat", "c")] == ["summary", "d"]
    assert store.append("chat", "c", msgs("e")) == 6  # the numbering goes on


def test_a_log_deleted_then_written_again_starts_afresh_and_restore_leaves_it(kinds: Any) -> None:
    store = kinds
    store.append("chat", "c", msgs("old"))
    store.delete("chat", "c")
    store.append("chat", "c", msgs("new"))
    assert store.restore("chat", "c") == 2  # live: nothing to undo
    assert [m.content for m in store.read("chat", "c")] == ["new"]


def test_a_deleted_snapshot_comes_back_as_a_new_version(kinds: Any) -> None:
    store = kinds
    store.put("cfg", "x", {"a": 1})
    store.put("cfg", "x", {"a": 2})
    assert store.delete("cfg", "x") == 3
    assert store.restore("cfg", "x") == 4
    doc = store.get("cfg", "x")
    assert (doc.version, doc.data) == (4, {"a": 2})
    assert [v.deleted for v in store.versions("cfg", "x")] == [False, False, True, False]


def test_restore_checks_the_expected_version(kinds: Any) -> None:
    store = kinds
    store.put("cfg", "x", {"a": 1})
    store.delete("cfg", "x")
    with pytest.raises(VersionConflict):
        store.restore("cfg", "x", expected_version=1)
    assert store.restore("cfg", "x", expected_version=2) == 3


def test_purged_and_pruned_documents_are_gone_for_good(kinds: Any) -> None:
    store = kinds
    for name in ("p", "q"):
        store.append("chat", name, msgs("hi"))
        store.delete("chat", name)
    store.purge("chat", ["p"])
    with pytest.raises(DocumentNotFound):
        store.restore("chat", "p")
    assert store.prune_documents("chat", keep_last=0) == 1
    with pytest.raises(DocumentNotFound):
        store.restore("chat", "q")
    assert count_rows(store, "versions", "chat") == 0
    with pytest.raises(DocumentNotFound):
        store.restore("chat", "never")


def test_a_restore_is_a_change_of_its_own(docstore_factory: Callable[..., DocStore]) -> None:
    store = docstore_factory()  # the feed is the same code in both shells (tests/test_changes.py)
    store.register("chat", Msg, mode="log")
    store.register("cfg", dict)
    cursor = store.change_cursor()
    store.append("chat", "c", msgs("a"))
    store.delete("chat", "c")
    store.restore("chat", "c")
    store.put("cfg", "stop", {})
    seen = []
    for change in store.changes(after=cursor):
        if change.name == "stop":
            break
        seen.append((change.op, change.version))
    assert seen == [("append", 1), ("delete", 1), ("restore", 1)]


def test_prune_restorable_deletes_old_logs_as_delete_does(kinds: Any) -> None:
    store = kinds
    for name in ("a", "b", "c", "d"):
        store.append("chat", name, msgs(name))
    store.delete("chat", "d")
    # keep_last counts live logs only: "d", already deleted, takes no place of theirs.
    assert store.prune_documents("chat", keep_last=1, restorable=True) == 2
    assert [doc.name for doc in store.list("chat")] == ["c"]
    assert count_rows(store, "versions", "chat") == 4  # every item is still there
    assert store.restore("chat", "a") == 1
    assert [m.content for m in store.read("chat", "a")] == ["a"]
    with pytest.raises(KindMismatch, match="snapshot kind"):
        store.prune_documents("cfg", keep_last=1, restorable=True)


def test_restores_racing_each_other_all_succeed_and_write_once(
    docstore_factory: Callable[..., DocStore],
) -> None:
    store = docstore_factory()
    store.register("cfg", dict)
    store.register("chat", Msg, mode="log")
    for round_ in range(5):
        store.put("cfg", f"x{round_}", {"n": round_})
        store.delete("cfg", f"x{round_}")
        store.append("chat", f"c{round_}", msgs("hi"))
        store.delete("chat", f"c{round_}")
        results: list[Any] = []
        barrier = threading.Barrier(4)

        def restore(kind: str, name: str, results: list[Any] = results, barrier: Any = barrier) -> None:
            barrier.wait()
            try:
                results.append(store.restore(kind, name))
            except Exception as exc:
                results.append(exc)

        threads = [
            threading.Thread(target=restore, args=(kind, f"{prefix}{round_}"))
            for kind, prefix in (("cfg", "x"), ("cfg", "x"), ("chat", "c"), ("chat", "c"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [1, 1, 3, 3], results
        assert [v.version for v in store.versions("cfg", f"x{round_}")] == [1, 2, 3]
