"""Checked by mypy --strict (tests/test_typing.py), never run: what the kind handles
returned by ``register()`` make of each store method's result."""

from __future__ import annotations

from typing import Any, assert_type

from pydantic import BaseModel, TypeAdapter

from docstore import AsyncDocStore, Doc, DocStore, Entry, Kind, LogKind, Registry
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

    assert_type(store.put(agent, "a", {"model": "x"}), Doc[Agent])
    assert_type(store.get(agent, "a").data, Agent)
    assert_type(store.get(agent, "a", version=1), Doc[Agent])
    assert_type(store.get_many(agent, ["a"]), dict[str, Doc[Agent]])
    assert_type(store.versions(agent, "a"), list[Doc[Agent]])
    assert_type(store.revert(agent, "a", 1), Doc[Agent])
    assert_type(store.list(agent, where={"model": "x"}), list[Doc[Agent]])
    assert_type(store.put_many(agent, {"a": {"model": "x"}}), list[Doc[Agent]])
    for doc in store.iter(agent):
        assert_type(doc, Doc[Agent])

    # A log kind's head holds its metadata; its items are read with read/entries.
    assert_type(store.get(chat, "c").data, Meta)
    assert_type(store.list(chat), list[Doc[Meta]])
    assert_type(store.read(chat, "c"), list[Message])
    assert_type(store.entries(chat, "c"), list[Entry[Message]])
    assert_type(store.read(plain, "p", last=5), list[int])
    assert_type(store.read(chat, "c", into=TypeAdapter(dict[str, Any])), list[dict[str, Any]])

    # Names keep working, untyped.
    assert_type(store.get("agent", "a"), Doc[Any])
    assert_type(store.read("chat", "c"), list[Any])
    # Methods that return no document take either.
    assert_type(store.append(chat, "c", [{"role": "user", "content": "hi"}]), int)
    assert_type(store.delete(agent, "a"), int)
    assert_type(store.count(agent), int)


async def async_store(store: AsyncDocStore) -> None:
    agent = store.register("agent", Agent)
    chat = store.register("chat", Message, mode="log", meta=Meta)
    assert_type((await store.put(agent, "a", {"model": "x"})).data, Agent)
    assert_type((await store.get(agent, "a")).data, Agent)
    assert_type(await store.list(agent), list[Doc[Agent]])
    assert_type(await store.read(chat, "c"), list[Message])
    assert_type((await store.get(chat, "c")).data, Meta)
    async for doc in store.iter(agent):
        assert_type(doc, Doc[Agent])


def registry() -> None:
    kinds = Registry()
    agent = kinds.register("agent", Agent, schema_version=2, upgraders={1: dict})
    assert_type(agent, Kind[Agent])
    assert_type(agent.adapter, TypeAdapter[Agent])
    assert_type(kinds.register("any", dict), Kind[dict[Any, Any]])


def agent_layer(store: DocStore) -> None:

    assert_type(store.get(AGENT, "weather").data, AgentConfig)
    assert_type(store.list(LLM), list[Doc[LLMConfig]])
    assert_type(store.read(CONVERSATION_KIND, "s1"), list[AgentMessage])
    assert_type(store.get(CONVERSATION_KIND, "s1").data, ConversationMeta)


def handles_of_several_kinds(store: DocStore) -> None:
    # A list of different kinds' handles is a list of Kind[...] (handles are covariant),
    # which the methods taking several kinds accept.
    kinds = [AGENT, LLM]
    for change in store.changes(kinds, stop=lambda: True):
        assert_type(change.kind, str)
