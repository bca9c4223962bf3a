# Generated from tests/test_restore_async.py by .ci/async_to_sync.py: do not edit.
# Change tests/test_restore_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""restore(): a delete undone, for snapshot and log kinds; purge and prune are for good."""

from __future__ import annotations

import pytest
from conftest import Factory, count_rows
from pydantic import BaseModel

from docstore import DocStore, DocumentNotFound, KindMismatch, VersionConflict


class Msg(BaseModel):
    role: str
    content: str


def msgs(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": t} for t in texts]


@pytest.fixture
def store(docstore_factory: Factory) -> DocStore:
    """A fresh store of this module's shell, with a log kind and a snapshot kind."""
    store = docstore_factory()
    store.register("chat", Msg, mode="log")
    store.register("cfg", dict)
    return store


def test_a_deleted_log_comes_back_with_the_items_it_had(store: DocStore) -> None:
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


def test_a_log_deleted_then_written_again_starts_afresh_and_restore_leaves_it(
    store: DocStore,
) -> None:
    store.append("chat", "c", msgs("old"))
    store.delete("chat", "c")
    store.append("chat", "c", msgs("new"))
    assert store.restore("chat", "c") == 2  # live: nothing to undo
    assert [m.content for m in store.read("chat", "c")] == ["new"]


def test_a_deleted_snapshot_comes_back_as_a_new_version(store: DocStore) -> None:
    store.put("cfg", "x", {"a": 1})
    store.put("cfg", "x", {"a": 2})
    assert store.delete("cfg", "x") == 3
    assert store.restore("cfg", "x") == 4
    doc = store.get("cfg", "x")
    assert (doc.version, doc.data) == (4, {"a": 2})
    assert [v.deleted for v in store.versions("cfg", "x")] == [False, False, True, False]


def test_restore_checks_the_expected_version(store: DocStore) -> None:
    store.put("cfg", "x", {"a": 1})
    store.delete("cfg", "x")
    with pytest.raises(VersionConflict):
        store.restore("cfg", "x", expected_version=1)
    assert store.restore("cfg", "x", expected_version=2) == 3


def test_purged_and_pruned_documents_are_gone_for_good(store: DocStore) -> None:
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


def test_prune_restorable_deletes_old_logs_as_delete_does(store: DocStore) -> None:
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
