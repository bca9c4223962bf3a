"""Checked by mypy --strict (tests/test_typing.py), never run: what the kind handles
returned by ``register()`` make of the handles ``store.documents()`` and ``store.log()``
open, and that a kind of one mode cannot be opened as the other (an unused ``type:
ignore`` fails under --strict)."""

from __future__ import annotations

from typing import Any, assert_type

from pydantic import BaseModel, TypeAdapter

from docstore import (
    AsyncDocStore,
    AsyncDocuments,
    AsyncLog,
    Doc,
    DocStore,
    Documents,
    Entry,
    Items,
    Kind,
    Log,
    LogHead,
    LogKind,
    Registry,
)
from docstore.agents import (
    AGENT,
    CONVERSATION_KIND,
    LLM,
    AgentConfig,
    ConversationMeta,
    LLMConfig,
)
from docstore.agents import (
    Message as AgentMessage,
)


class Agent(BaseModel):
    model: str


class Message(BaseModel):
    role: str
    content: str


class Meta(BaseModel):
    title: str = ""


def sync_store(store: DocStore) -> None:
    agent = store.register("agent", Agent)
    chat = store.register("chat", Message, mode="log", meta=Meta)
    plain = store.register("plain", TypeAdapter(int), mode="log")
    assert_type(agent, Kind[Agent])
    assert_type(chat, LogKind[Message, Meta])
    assert_type(plain, LogKind[int, dict[str, object]])

    agents = store.documents(agent)
    assert_type(agents, Documents[Agent])
    assert_type(agents.put("a", {"model": "x"}), Doc[Agent])
    assert_type(agents.get("a").data, Agent)
    assert_type(agents.get("a", version=1), Doc[Agent])
    assert_type(agents.get_many(["a"]), dict[str, Doc[Agent]])
    assert_type(agents.versions("a"), list[Doc[Agent]])
    assert_type(agents.revert("a", 1), Doc[Agent])
    assert_type(agents.list(where={"model": "x"}), list[Doc[Agent]])
    assert_type(agents.put_many({"a": {"model": "x"}}), list[Doc[Agent]])
    for doc in agents.iter():
        assert_type(doc, Doc[Agent])
    assert_type(agents.delete("a"), int)
    assert_type(agents.restore("a"), int)
    assert_type(agents.count(), int)

    # A log's head holds its metadata; its items are read with read/entries.
    chats = store.log(chat)
    assert_type(chats, Log[Message, Meta])
    assert_type(chats.append("c", [{"role": "user", "content": "hi"}]), int)
    assert_type(chats.head("c").meta, Meta)
    assert_type(chats.head("c"), LogHead[Meta])
    assert_type(chats.heads(["c"]), dict[str, LogHead[Meta]])
    assert_type(chats.list(), list[LogHead[Meta]])
    for head in chats.iter():
        assert_type(head, LogHead[Meta])
    assert_type(chats.read("c"), Items[Message])
    assert_type(chats.read("c", written_at=True).entries(), list[Entry[Message]])
    assert_type(store.log(plain).read("p", last=5), Items[int])
    assert_type(chats.read("c", into=TypeAdapter(dict[str, Any])), Items[dict[str, Any]])

    # One mode's handle cannot be opened as the other's.
    store.documents(chat)  # type: ignore[call-overload]
    store.log(agent)  # type: ignore[call-overload]

    # Names keep working, untyped, on the handles and on the store.
    assert_type(store.documents("agent"), Documents[Any])
    assert_type(store.log("chat"), Log[Any, Any])
    assert_type(store.get("agent", "a"), Doc[Any])
    assert_type(store.get(agent, "a"), Doc[Any])
    assert_type(store.read("chat", "c"), Items[Any])


async def async_store(store: AsyncDocStore) -> None:
    agent = store.register("agent", Agent)
    chat = store.register("chat", Message, mode="log", meta=Meta)
    agents = store.documents(agent)
    assert_type(agents, AsyncDocuments[Agent])
    assert_type((await agents.put("a", {"model": "x"})).data, Agent)
    assert_type((await agents.get("a")).data, Agent)
    assert_type(await agents.list(), list[Doc[Agent]])
    chats = store.log(chat)
    assert_type(chats, AsyncLog[Message, Meta])
    assert_type(await chats.read("c"), Items[Message])
    assert_type((await chats.head("c")).meta, Meta)
    async for doc in agents.iter():
        assert_type(doc, Doc[Agent])
    store.documents(chat)  # type: ignore[call-overload]


def registry() -> None:
    kinds = Registry()
    agent = kinds.register("agent", Agent, schema_version=2, upgraders={1: dict})
    assert_type(agent, Kind[Agent])
    assert_type(agent.adapter, TypeAdapter[Agent])
    assert_type(kinds.register("any", dict), Kind[dict[Any, Any]])


def agent_layer(store: DocStore) -> None:
    assert_type(store.documents(AGENT).get("weather").data, AgentConfig)
    assert_type(store.documents(LLM).list(), list[Doc[LLMConfig]])
    assert_type(store.log(CONVERSATION_KIND).read("s1"), Items[AgentMessage])
    assert_type(store.log(CONVERSATION_KIND).head("s1").meta, ConversationMeta)


def handles_of_several_kinds(store: DocStore) -> None:
    # A list of different kinds' handles is a list of Kind[...] (handles are covariant),
    # which the methods taking several kinds accept.
    kinds = [AGENT, LLM]
    for change in store.changes(kinds, stop=lambda: True):
        assert_type(change.kind, str)
