# Generated from tests/test_kinds_async.py by .ci/async_to_sync.py: do not edit.
# Change tests/test_kinds_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""Kind handles: what ``register()`` returns, taken by every store method in place of the
kind's name (tests/typing/ checks what they make of the results' types)."""

from __future__ import annotations

import pytest
from conftest import Factory
from pydantic import BaseModel

from docstore import DocStore, DocumentNotFound, KindMismatch, LogHead, Registry, UnknownKind


class Agent(BaseModel):
    model: str


class Message(BaseModel):
    role: str
    content: str


class Meta(BaseModel):
    title: str = ""


@pytest.fixture
def store(docstore_factory: Factory) -> DocStore:
    """A fresh store of this module's shell (in place of conftest's ``store``)."""
    return docstore_factory()


def test_every_method_takes_a_handle_in_place_of_the_name(store: DocStore) -> None:
    agent = store.register("agent", Agent)
    chat = store.register("chat", Message, mode="log", meta=Meta)
    doc = store.put(agent, "a", {"model": "m1"})
    assert doc.data == Agent(model="m1") and doc.kind == "agent"
    assert store.get(agent, "a") == store.get("agent", "a")
    store.put(agent, "a", {"model": "m2"})
    assert [d.data.model for d in store.versions(agent, "a")] == ["m1", "m2"]
    assert (store.revert(agent, "a", 1)).data.model == "m1"
    assert [d.name for d in store.put_many(agent, {"b": {"model": "x"}, "c": {"model": "y"}})] == [
        "b",
        "c",
    ]
    assert list(store.get_many(agent, ["a", "b"])) == ["a", "b"]
    assert [d.name for d in store.list(agent, where={"model": "x"})] == ["b"]
    assert [d.name for d in store.iter(agent)] == ["a", "b", "c"]
    assert store.count(agent) == 3
    assert store.delete(agent, "c") == 2
    assert store.create_index(agent) == store.create_index("agent")
    assert store.prune_versions(agent, keep_last=1) == 3  # a: 2 of 3 go, c: 1 of 2
    assert store.upgrade(agent) == 0

    assert store.append(chat, "c1", [{"role": "user", "content": "hi"}], meta={"title": "t"}) == 1
    store.rewrite(chat, "c1", [{"role": "user", "content": "again"}])
    assert store.read(chat, "c1") == [Message(role="user", content="again")]
    assert (store.read(chat, "c1")).versions == [2]
    assert (store.get(chat, "c1")).data == Meta(title="t")
    assert store.clear(chat, "c1") == 2 and store.read(chat, "c1") == []
    assert store.purge(chat, ["c1"]) == ["c1"]


def test_documents_opens_a_snapshot_kind_with_its_verbs(store: DocStore) -> None:
    agents = store.documents(store.register("agent", Agent))
    assert agents.kind == "agent"
    doc = agents.put("a", {"model": "m1"})
    assert doc.data == Agent(model="m1") and doc.changed is True
    assert agents.get("a") == store.get("agent", "a")
    agents.put("a", Agent(model="m2"))
    assert [d.data.model for d in agents.versions("a")] == ["m1", "m2"]
    assert (agents.revert("a", 1)).data.model == "m1"
    assert [d.name for d in agents.put_many({"b": {"model": "x"}, "c": {"model": "y"}})] == ["b", "c"]
    assert list(agents.get_many(["a", "b", "zz"])) == ["a", "b"]
    assert [d.name for d in agents.list(where={"model": "x"})] == ["b"]
    assert [d.name for d in agents.iter(batch_size=2)] == ["a", "b", "c"]
    assert agents.count() == 3
    assert agents.delete("c") == 2 and agents.count() == 2
    assert agents.restore("c") == 3 and (agents.get("c")).data.model == "y"
    assert agents.prune_versions(keep_last=1) == 4  # a: 2 of 3 go, c: 2 of 3
    assert agents.upgrade() == 0
    assert agents.purge(["b"]) == ["b"]
    with pytest.raises(DocumentNotFound):
        agents.get("b")
    # A name opens one too, untyped.
    assert store.documents("agent").get("a") == agents.get("a")
    assert agents.prune_documents(keep_last=1) == 1 and [d.name for d in agents.list()] == ["c"]


def test_log_opens_a_log_kind_with_its_verbs(store: DocStore) -> None:
    chats = store.log(store.register("chat", Message, mode="log", meta=Meta))
    assert chats.kind == "chat"
    assert chats.append("c1", [{"role": "user", "content": "hi"}], meta={"title": "t"}) == 1
    assert chats.rewrite("c1", [Message(role="user", content="again")]) == 2
    assert chats.read("c1") == [Message(role="user", content="again")]
    assert (chats.read("c1")).versions == [2]
    head = chats.head("c1")
    assert type(head) is LogHead and (head.meta, head.count, head.version) == (Meta(title="t"), 1, 2)
    assert head == LogHead.of(store.get("chat", "c1"))  # the store's own: a Doc, meta as its data
    assert chats.list() == [head] == [h for h in chats.iter()] and chats.heads(["c1", "c2"]) == {"c1": head}
    chats.append("c2", [], meta={"title": "u"})
    assert [h.name for h in chats.list(order_by="data.title", after=head)] == ["c2"]
    chats.purge(["c2"])
    assert chats.clear("c1") == 2 and chats.read("c1") == [] and chats.count() == 1
    chats.delete("c1")
    assert chats.count() == 0
    chats.restore("c1")
    assert chats.count() == 1
    assert chats.purge(["c1"]) == ["c1"] and chats.count() == 0


def test_a_kind_is_opened_in_its_own_mode_only(store: DocStore) -> None:
    agent = store.register("agent", Agent)
    chat = store.register("chat", Message, mode="log")
    # A type checker refuses these (tests/typing/); a name, or an untyped caller, gets told.
    with pytest.raises(KindMismatch, match=r"kind .chat. is a log kind: open it with store\.log"):
        store.documents(chat)  # type: ignore[call-overload]
    with pytest.raises(KindMismatch, match="kind 'chat' is a log kind"):
        store.documents("chat")
    with pytest.raises(KindMismatch, match=r"kind .agent. is a snapshot kind: open it with store\.documents"):
        store.log("agent")
    with pytest.raises(KindMismatch, match="kind 'agent' is a snapshot kind"):
        store.log(agent)  # type: ignore[call-overload]
    with pytest.raises(UnknownKind):
        store.documents("nope")
    stranger = Registry().register("agent", dict)
    with pytest.raises(KindMismatch, match="this handle is not the kind registered"):
        store.documents(stranger)


def test_a_handle_of_another_registration_is_refused_by_name(store: DocStore) -> None:
    store.register("agent", Agent)
    stranger = Registry().register("agent", dict)
    with pytest.raises(KindMismatch, match="kind 'agent': this handle is not the kind registered"):
        store.get(stranger, "a")
    unknown = Registry().register("tool", dict)
    with pytest.raises(UnknownKind, match="'tool'"):
        store.put(unknown, "t", {})
