"""Kind handles: what runs once, not once per store shell. The registry's own (no store),
and what the sync shell alone is checked for; the rest is in tests/test_kinds_async.py and
its generated twin tests/test_kinds.py."""

from __future__ import annotations

import pytest
from test_kinds import Agent, Message, Meta

from docstore import BaseKind, DocStore, Documents, Kind, KindMismatch, Log, LogKind, Registry


def test_register_returns_a_handle_of_the_kinds_mode() -> None:
    kinds = Registry()
    agent = kinds.register("agent", Agent)
    chat = kinds.register("chat", Message, mode="log", meta=Meta)
    assert type(agent) is Kind and agent.name == "agent" and agent.mode == "snapshot"
    assert isinstance(chat, LogKind) and not isinstance(chat, Kind) and chat.mode == "log"
    assert isinstance(chat, BaseKind) and isinstance(agent, BaseKind)
    assert kinds.get(agent) is agent and kinds.get("chat") is chat


def test_the_sync_handles_are_the_generated_classes(docstore_store: DocStore) -> None:
    agent = docstore_store.register("agent", Agent)
    chat = docstore_store.register("chat", Message, mode="log")
    assert type(docstore_store.documents(agent)) is Documents
    assert type(docstore_store.log(chat)) is Log
    assert "Documents 'agent'" in repr(docstore_store.documents(agent))


def test_export_and_the_change_feed_take_handles_too(docstore_store: DocStore) -> None:
    agent = docstore_store.register("agent", Agent)
    docstore_store.register("other", dict)
    cursor = docstore_store.change_cursor()
    docstore_store.put("other", "o", {})
    docstore_store.put(agent, "a", {"model": "m"})
    assert list(docstore_store.export(kinds=[agent])) == list(docstore_store.export(kinds=["agent"]))
    assert len(list(docstore_store.export(kinds=[agent]))) == 2  # the head and its version
    feed = docstore_store.changes([agent], after=cursor, stop=lambda: True)
    assert [(c.kind, c.name) for c in feed] == [("agent", "a")]


def test_a_handle_stays_valid_in_a_copy_of_its_registry() -> None:
    kinds = Registry()
    agent = kinds.register("agent", Agent)
    copy = kinds.copy()
    assert copy.name(agent) == "agent" and agent in copy and "agent" in copy
    copy.register("agent", Agent)  # registered again: a new kind, which the old handle is not
    assert agent not in copy and "agent" in copy
    with pytest.raises(KindMismatch):
        copy.name(agent)
    assert Registry().add(agent) is agent
