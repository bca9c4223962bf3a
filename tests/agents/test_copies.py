"""The copies a StorageManager keeps of the messages it saved."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import agent_fixtures
import orjson
import pytest

from docstore import AsyncDocStore, DocStore
from docstore.agents import AsyncStorageManager
from docstore.agents._copies import saved_copies

db = agent_fixtures.db


def test_copies_equal_the_messages_with_their_containers_copied_and_their_texts_shared() -> None:
    message: dict[str, Any] = {
        "role": "user",
        "content": [{"type": "text", "text": "x" * 1000}],
        "usage": {"input_tokens": 3, "ratio": 0.5, "cached": True, "note": None},
    }
    (copy,) = saved_copies([message], [orjson.dumps(message)])
    assert copy == message
    assert copy is not message and copy["content"] is not message["content"]
    assert copy["content"][0] is not message["content"][0]
    assert copy["content"][0]["text"] is message["content"][0]["text"]
    message["content"][0]["text"] = "edited"
    assert copy != message


def test_a_message_holding_anything_but_json_data_is_copied_from_its_json() -> None:
    # A tuple, or an object JSON can spell but that may change in place, is not shared:
    # the copy is what was saved, as JSON.
    when = datetime(2026, 1, 1, tzinfo=UTC)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi", "tags": ("a", "b")},
        {"role": "user", "content": "hi", "at": when},
    ]
    raws = [orjson.dumps(m) for m in messages]
    assert saved_copies(messages, raws) == [orjson.loads(r) for r in raws]


class _EditsDuringAppend(AsyncDocStore):
    """A store whose append awaits a host's edit first, as a host task running while the
    manager's write is in flight would."""

    edit: Callable[[], Awaitable[None]] | None = None

    async def append(self, *args: Any, **kwargs: Any) -> Any:
        if self.edit is not None:
            edit, self.edit = self.edit, None
            await edit()
        return await super().append(*args, **kwargs)


@pytest.mark.parametrize("path", ["general", "known"])
async def test_an_edit_made_while_a_save_is_in_flight_is_saved_by_the_next_save(
    db: DocStore, docstore_dsn: str, path: str
) -> None:
    # What a manager remembers as saved is what it wrote, not what the host's objects
    # became while the write was awaited: the next save sees the edit and stores it.
    store = await _EditsDuringAppend.connect(docstore_dsn, schema=db.schema, max_size=2)
    try:
        manager = AsyncStorageManager(store)
        conversation: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": "a"}]}]
        if path == "known":  # a first save, so the second takes the remembered path
            await manager.save_full_history("agent", "s1", conversation)
        conversation.append({"role": "assistant", "content": [{"type": "text", "text": "b"}]})

        async def edit() -> None:
            conversation[-1]["content"][0]["text"] = "edited while saving"

        store.edit = edit
        await manager.save_full_history("agent", "s1", conversation)
        await manager.save_full_history("agent", "s1", conversation)
        loaded = await manager.load_history("agent", "s1")
        assert [m["content"][0]["text"] for m in loaded] == ["a", "edited while saving"]
    finally:
        await store.close()


async def test_an_edit_made_before_a_retried_save_lands_is_saved_by_the_next_save(
    db: DocStore, docstore_dsn: str
) -> None:
    # The remembered path's append conflicts (another host wrote meanwhile), and the
    # general path then writes the messages as they were validated: what the manager
    # remembers as saved must be those, not the host's objects as edited meanwhile.
    store = await _EditsDuringAppend.connect(docstore_dsn, schema=db.schema, max_size=2)
    other = AsyncStorageManager(await AsyncDocStore.connect(docstore_dsn, schema=db.schema, max_size=1))
    try:
        manager = AsyncStorageManager(store)
        conversation: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": "a"}]}]
        await manager.save_full_history("agent", "s1", conversation)
        conversation.append({"role": "assistant", "content": [{"type": "text", "text": "b"}]})

        async def edit_while_another_host_writes() -> None:
            conversation[-1]["content"][0]["text"] = "edited while saving"
            theirs = [conversation[0], {"role": "assistant", "content": [{"type": "text", "text": "x"}]}]
            await other.save_full_history("agent", "s1", theirs)

        store.edit = edit_while_another_host_writes
        await manager.save_full_history("agent", "s1", conversation)
        await manager.save_full_history("agent", "s1", conversation)
        loaded = await manager.load_history("agent", "s1")
        assert [m["content"][0]["text"] for m in loaded] == ["a", "edited while saving"]
    finally:
        await other.store.close()
        await store.close()
