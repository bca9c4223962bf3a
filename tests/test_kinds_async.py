"""Kind handles: what ``register()`` returns, taken by every store method in place of the
kind's name (tests/typing/ checks what they make of the results' types)."""

from __future__ import annotations

import pytest
from conftest import AsyncFactory
from pydantic import BaseModel

from docstore import AsyncDocStore, DocumentNotFound, KindMismatch, LogHead, Registry, UnknownKind


class Agent(BaseModel):
    model: str


class Message(BaseModel):
    role: str
    content: str


class Meta(BaseModel):
    title: str = ""


@pytest.fixture
async def astore(adocstore_factory: AsyncFactory) -> AsyncDocStore:
    """A fresh store of this module's shell (in place of conftest's ``store``)."""
    return await adocstore_factory()


async def test_every_method_takes_a_handle_in_place_of_the_name(astore: AsyncDocStore) -> None:
    agent = astore.register("agent", Agent)
    chat = astore.register("chat", Message, mode="log", meta=Meta)
    doc = await astore.put(agent, "a", {"model": "m1"})
    assert doc.data == Agent(model="m1") and doc.kind == "agent"
    assert await astore.get(agent, "a") == await astore.get("agent", "a")
    await astore.put(agent, "a", {"model": "m2"})
    assert [d.data.model for d in await astore.versions(agent, "a")] == ["m1", "m2"]
    assert (await astore.revert(agent, "a", 1)).data.model == "m1"
    assert [d.name for d in await astore.put_many(agent, {"b": {"model": "x"}, "c": {"model": "y"}})] == [
        "b",
        "c",
    ]
    assert list(await astore.get_many(agent, ["a", "b"])) == ["a", "b"]
    assert [d.name for d in await astore.list(agent, where={"model": "x"})] == ["b"]
    assert [d.name async for d in astore.iter(agent)] == ["a", "b", "c"]
    assert await astore.count(agent) == 3
    assert await astore.delete(agent, "c") == 2
    assert await astore.create_index(agent) == await astore.create_index("agent")
    assert await astore.prune_versions(agent, keep_last=1) == 3  # a: 2 of 3 go, c: 1 of 2
    assert await astore.upgrade(agent) == 0

    assert await astore.append(chat, "c1", [{"role": "user", "content": "hi"}], meta={"title": "t"}) == 1
    await astore.rewrite(chat, "c1", [{"role": "user", "content": "again"}])
    assert await astore.read(chat, "c1") == [Message(role="user", content="again")]
    assert (await astore.read(chat, "c1")).versions == [2]
    assert (await astore.get(chat, "c1")).data == Meta(title="t")
    assert await astore.clear(chat, "c1") == 2 and await astore.read(chat, "c1") == []
    assert await astore.purge(chat, ["c1"]) == ["c1"]


async def test_documents_opens_a_snapshot_kind_with_its_verbs(astore: AsyncDocStore) -> None:
    agents = astore.documents(astore.register("agent", Agent))
    assert agents.kind == "agent"
    doc = await agents.put("a", {"model": "m1"})
    assert doc.data == Agent(model="m1") and doc.changed is True
    assert await agents.get("a") == await astore.get("agent", "a")
    await agents.put("a", Agent(model="m2"))
    assert [d.data.model for d in await agents.versions("a")] == ["m1", "m2"]
    assert (await agents.revert("a", 1)).data.model == "m1"
    assert [d.name for d in await agents.put_many({"b": {"model": "x"}, "c": {"model": "y"}})] == ["b", "c"]
    assert list(await agents.get_many(["a", "b", "zz"])) == ["a", "b"]
    assert [d.name for d in await agents.list(where={"model": "x"})] == ["b"]
    assert [d.name async for d in agents.iter(batch_size=2)] == ["a", "b", "c"]
    assert await agents.count() == 3
    assert await agents.delete("c") == 2 and await agents.count() == 2
    assert await agents.restore("c") == 3 and (await agents.get("c")).data.model == "y"
    assert await agents.prune_versions(keep_last=1) == 4  # a: 2 of 3 go, c: 2 of 3
    assert await agents.upgrade() == 0
    assert await agents.purge(["b"]) == ["b"]
    with pytest.raises(DocumentNotFound):
        await agents.get("b")
    # A name opens one too, untyped.
    assert await astore.documents("agent").get("a") == await agents.get("a")
    assert await agents.prune_documents(keep_last=1) == 1 and [d.name for d in await agents.list()] == ["c"]


async def test_log_opens_a_log_kind_with_its_verbs(astore: AsyncDocStore) -> None:
    chats = astore.log(astore.register("chat", Message, mode="log", meta=Meta))
    assert chats.kind == "chat"
    assert await chats.append("c1", [{"role": "user", "content": "hi"}], meta={"title": "t"}) == 1
    assert await chats.rewrite("c1", [Message(role="user", content="again")]) == 2
    assert await chats.read("c1") == [Message(role="user", content="again")]
    assert (await chats.read("c1")).versions == [2]
    head = await chats.head("c1")
    assert type(head) is LogHead and (head.meta, head.count, head.version) == (Meta(title="t"), 1, 2)
    assert head == LogHead.of(await astore.get("chat", "c1"))  # the store's own: a Doc, meta as its data
    assert await chats.list() == [head] == [h async for h in chats.iter()] and await chats.heads(
        ["c1", "c2"]
    ) == {"c1": head}
    await chats.append("c2", [], meta={"title": "u"})
    assert [h.name for h in await chats.list(order_by="data.title", after=head)] == ["c2"]
    await chats.purge(["c2"])
    assert await chats.clear("c1") == 2 and await chats.read("c1") == [] and await chats.count() == 1
    await chats.delete("c1")
    assert await chats.count() == 0
    await chats.restore("c1")
    assert await chats.count() == 1
    assert await chats.purge(["c1"]) == ["c1"] and await chats.count() == 0


async def test_a_kind_is_opened_in_its_own_mode_only(astore: AsyncDocStore) -> None:
    agent = astore.register("agent", Agent)
    chat = astore.register("chat", Message, mode="log")
    # A type checker refuses these (tests/typing/); a name, or an untyped caller, gets told.
    with pytest.raises(KindMismatch, match=r"kind .chat. is a log kind: open it with store\.log"):
        astore.documents(chat)  # type: ignore[call-overload]
    with pytest.raises(KindMismatch, match="kind 'chat' is a log kind"):
        astore.documents("chat")
    with pytest.raises(KindMismatch, match=r"kind .agent. is a snapshot kind: open it with store\.documents"):
        astore.log("agent")
    with pytest.raises(KindMismatch, match="kind 'agent' is a snapshot kind"):
        astore.log(agent)  # type: ignore[call-overload]
    with pytest.raises(UnknownKind):
        astore.documents("nope")
    stranger = Registry().register("agent", dict)
    with pytest.raises(KindMismatch, match="this handle is not the kind registered"):
        astore.documents(stranger)


async def test_a_handle_of_another_registration_is_refused_by_name(astore: AsyncDocStore) -> None:
    astore.register("agent", Agent)
    stranger = Registry().register("agent", dict)
    with pytest.raises(KindMismatch, match="kind 'agent': this handle is not the kind registered"):
        await astore.get(stranger, "a")
    unknown = Registry().register("tool", dict)
    with pytest.raises(UnknownKind, match="'tool'"):
        await astore.put(unknown, "t", {})
