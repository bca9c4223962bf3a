"""restore(): a delete undone, for snapshot and log kinds; purge and prune are for good."""

from __future__ import annotations

import pytest
from conftest import AsyncFactory, acount_rows
from pydantic import BaseModel

from docstore import AsyncDocStore, DocumentNotFound, KindMismatch, VersionConflict


class Msg(BaseModel):
    role: str
    content: str


def msgs(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": t} for t in texts]


@pytest.fixture
async def astore(adocstore_factory: AsyncFactory) -> AsyncDocStore:
    """A fresh store of this module's shell, with a log kind and a snapshot kind."""
    store = await adocstore_factory()
    store.register("chat", Msg, mode="log")
    store.register("cfg", dict)
    return store


async def test_a_deleted_log_comes_back_with_the_items_it_had(astore: AsyncDocStore) -> None:
    await astore.append("chat", "c", msgs("a", "b", "c"))
    await astore.rewrite("chat", "c", msgs("summary", "d"))  # live: versions 4 and 5
    await astore.delete("chat", "c")
    assert await astore.read("chat", "c") == []
    # prune_versions keeps a deleted log's live items: they are what restore brings back.
    assert await astore.prune_versions("chat", keep_last=1) == 3
    assert await astore.restore("chat", "c") == 5
    head = await astore.get("chat", "c")
    assert (head.version, head.count, head.deleted) == (5, 2, False)
    assert [m.content for m in await astore.read("chat", "c")] == ["summary", "d"]
    assert await astore.append("chat", "c", msgs("e")) == 6  # the numbering goes on


async def test_a_log_deleted_then_written_again_starts_afresh_and_restore_leaves_it(
    astore: AsyncDocStore,
) -> None:
    await astore.append("chat", "c", msgs("old"))
    await astore.delete("chat", "c")
    await astore.append("chat", "c", msgs("new"))
    assert await astore.restore("chat", "c") == 2  # live: nothing to undo
    assert [m.content for m in await astore.read("chat", "c")] == ["new"]


async def test_a_deleted_snapshot_comes_back_as_a_new_version(astore: AsyncDocStore) -> None:
    await astore.put("cfg", "x", {"a": 1})
    await astore.put("cfg", "x", {"a": 2})
    assert await astore.delete("cfg", "x") == 3
    assert await astore.restore("cfg", "x") == 4
    doc = await astore.get("cfg", "x")
    assert (doc.version, doc.data) == (4, {"a": 2})
    assert [v.deleted for v in await astore.versions("cfg", "x")] == [False, False, True, False]


async def test_restore_checks_the_expected_version(astore: AsyncDocStore) -> None:
    await astore.put("cfg", "x", {"a": 1})
    await astore.delete("cfg", "x")
    with pytest.raises(VersionConflict):
        await astore.restore("cfg", "x", expected_version=1)
    assert await astore.restore("cfg", "x", expected_version=2) == 3


async def test_purged_and_pruned_documents_are_gone_for_good(astore: AsyncDocStore) -> None:
    for name in ("p", "q"):
        await astore.append("chat", name, msgs("hi"))
        await astore.delete("chat", name)
    await astore.purge("chat", ["p"])
    with pytest.raises(DocumentNotFound):
        await astore.restore("chat", "p")
    assert await astore.prune_documents("chat", keep_last=0) == 1
    with pytest.raises(DocumentNotFound):
        await astore.restore("chat", "q")
    assert await acount_rows(astore, "versions", "chat") == 0
    with pytest.raises(DocumentNotFound):
        await astore.restore("chat", "never")


async def test_prune_restorable_deletes_old_logs_as_delete_does(astore: AsyncDocStore) -> None:
    for name in ("a", "b", "c", "d"):
        await astore.append("chat", name, msgs(name))
    await astore.delete("chat", "d")
    # keep_last counts live logs only: "d", already deleted, takes no place of theirs.
    assert await astore.prune_documents("chat", keep_last=1, restorable=True) == 2
    assert [doc.name for doc in await astore.list("chat")] == ["c"]
    assert await acount_rows(astore, "versions", "chat") == 4  # every item is still there
    assert await astore.restore("chat", "a") == 1
    assert [m.content for m in await astore.read("chat", "a")] == ["a"]
    with pytest.raises(KindMismatch, match="snapshot kind"):
        await astore.prune_documents("cfg", keep_last=1, restorable=True)
