"""docstore.langchain.DocStoreChatMessageHistory: LangChain's chat-message history.

langchain-tests (1.1) has standard suites for chat models, embeddings, tools, vector
stores, caches, retrievers and key-value stores, and none for BaseChatMessageHistory; the
cases here are langchain-core's own chat-history cases (add, bulk add, clear, async)
written for this store, plus what it promises: every message class round-trips, and it
works under RunnableWithMessageHistory with langchain-core's own fake chat model.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import langchain_core.messages as lc_messages
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from docstore import AsyncDocStore, DocStore, DocumentInvalid
from docstore.langchain import MESSAGE_TYPES, DocStoreChatMessageHistory

ONE_OF_EACH: list[BaseMessage] = [
    SystemMessage("You are terse.", id="s1"),
    HumanMessage(
        [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image", "url": "https://example.com/a.png"},
        ],
        id="h1",
        name="ada",
    ),
    AIMessage(
        "",
        id="a1",
        tool_calls=[{"name": "weather", "args": {"city": "Paris", "days": [1, 2]}, "id": "call_1"}],
        invalid_tool_calls=[{"name": "bad", "args": "{not json", "id": "call_2", "error": "no JSON"}],
        usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13},
        response_metadata={"model_name": "fake", "stop_reason": "tool_use"},
        additional_kwargs={"extra": {"nested": True}},
    ),
    ToolMessage("22°C", tool_call_id="call_1", artifact={"raw": [22.0]}, status="success", name="weather"),
    ToolMessage("failed", tool_call_id="call_2", status="error"),
    FunctionMessage(content='{"t": 22}', name="weather"),
    ChatMessage(content="a critic speaks", role="critic"),
    RemoveMessage(id="h1"),
    AIMessageChunk(
        content="partial",
        tool_call_chunks=[{"name": "weather", "args": '{"city": "Pa', "id": "call_3", "index": 0}],
        chunk_position="last",
    ),
    HumanMessageChunk(content="hu"),
    SystemMessageChunk(content="sy"),
    ToolMessageChunk(content="to", tool_call_id="call_3"),
    ChatMessageChunk(content="ch", role="critic"),
    FunctionMessageChunk(content="fu", name="weather"),
    AIMessage('Sunny, 22°C in Paris. 🌞 "quoted" \\ back', id="a2"),
]


@pytest.fixture
def store(docstore_factory: Callable[..., DocStore]) -> DocStore:
    return docstore_factory()


def _defined_message_classes() -> set[type[BaseMessage]]:
    """Every concrete BaseMessage subclass that langchain_core.messages exports."""
    return {
        cls
        for cls in vars(lc_messages).values()
        if inspect.isclass(cls)
        and issubclass(cls, BaseMessage)
        and cls not in (BaseMessage, BaseMessageChunk)
        and "type" in cls.model_fields
    }


def test_every_message_class_langchain_defines_is_known_and_round_trips(store: DocStore) -> None:
    assert _defined_message_classes() == set(MESSAGE_TYPES)
    assert {type(m) for m in ONE_OF_EACH} == set(MESSAGE_TYPES)
    history = DocStoreChatMessageHistory(store, "all-types")
    history.add_messages(ONE_OF_EACH)
    again = DocStoreChatMessageHistory(store, "all-types").messages
    assert [type(m) for m in again] == [type(m) for m in ONE_OF_EACH]
    assert again == ONE_OF_EACH
    ai = again[2]
    assert isinstance(ai, AIMessage)
    assert ai.tool_calls == [
        {"name": "weather", "args": {"city": "Paris", "days": [1, 2]}, "id": "call_1", "type": "tool_call"}
    ]
    assert ai.usage_metadata == {"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}


def test_each_message_is_a_version_of_a_log_readable_in_sql(store: DocStore) -> None:
    history = DocStoreChatMessageHistory(store, "session-1")
    history.add_user_message("hi")
    history.add_ai_message("hello")
    history.add_message(ToolMessage("42", tool_call_id="c"))
    assert store.read(history.kind, "session-1").versions == [1, 2, 3]
    with store.pool.connection() as conn:
        rows = conn.execute(
            f"SELECT data ->> 'type', data ->> 'content' FROM \"{store.schema}\".versions"
            " WHERE kind = 'langchain_message' AND name = 'session-1' ORDER BY version"
        ).fetchall()
    assert rows == [("human", "hi"), ("ai", "hello"), ("tool", "42")]


def test_add_clear_and_a_window_of_the_last_messages(store: DocStore) -> None:
    history = DocStoreChatMessageHistory(store, "s")
    assert history.messages == []
    history.clear()  # nothing to clear is no error
    history.add_messages([HumanMessage(f"m{i}") for i in range(10)])
    history.add_messages([])
    assert [m.content for m in DocStoreChatMessageHistory(store, "s", last=3).messages] == ["m7", "m8", "m9"]
    assert len(history.messages) == 10
    assert DocStoreChatMessageHistory(store, "other").messages == []
    history.clear()
    assert history.messages == []
    # Cleared messages stay in the log's history, readable by version, until pruned.
    with store.pool.connection() as conn:
        kept = conn.execute(
            f'SELECT count(*) FROM "{store.schema}".versions WHERE kind = %s AND name = %s',
            ("langchain_message", "s"),
        ).fetchone()
    assert kept == (10,)
    history.add_ai_message("after")
    assert [m.content for m in history.messages] == ["after"]
    with pytest.raises(ValueError, match="last"):
        DocStoreChatMessageHistory(store, "s", last=0)


def test_an_append_with_a_bad_message_writes_none_of_them(store: DocStore) -> None:
    history = DocStoreChatMessageHistory(store, "atomic")
    bad: Any = {"type": "human"}  # no content
    with pytest.raises(DocumentInvalid) as caught:
        history.add_messages([HumanMessage("ok"), bad])
    assert caught.value.kind == "langchain_message" and caught.value.name == "atomic"
    assert history.messages == []


def test_a_kind_of_its_own_and_a_shared_registration(store: DocStore) -> None:
    first = DocStoreChatMessageHistory(store, "x", kind="support_chat")
    second = DocStoreChatMessageHistory(store, "x", kind="support_chat")  # reuses the kind
    first.add_user_message("one")
    assert [m.content for m in second.messages] == ["one"]
    assert DocStoreChatMessageHistory(store, "x").messages == []


def test_the_async_methods_on_both_stores(store: DocStore, docstore_dsn: str) -> None:
    async def main() -> None:
        on_sync = DocStoreChatMessageHistory(store, "a")
        await on_sync.aadd_messages([HumanMessage("sync store")])
        assert [m.content for m in await on_sync.aget_messages()] == ["sync store"]
        await on_sync.aclear()
        assert await on_sync.aget_messages() == []

        async with await AsyncDocStore.connect(docstore_dsn, schema=store.schema, max_size=2) as astore:
            history = DocStoreChatMessageHistory(astore, "b", last=2)
            await history.aadd_messages(ONE_OF_EACH)
            assert await history.aget_messages() == ONE_OF_EACH[-2:]
            with pytest.raises(TypeError, match="aget_messages"):
                _ = history.messages
            with pytest.raises(TypeError, match="aadd_messages"):
                history.add_messages([HumanMessage("x")])
            await history.aclear()
            assert await history.aget_messages() == []
            await history.aclear()

    asyncio.run(main())


# langchain-core 1 deprecates it in favour of LangGraph's persistence (this package's
# DocStoreStore and the checkpointer), but still ships and documents it.
@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
def test_runnable_with_message_history_keeps_the_conversation(store: DocStore) -> None:
    seen: list[list[BaseMessage]] = []

    def record(prompt: Any) -> Any:
        seen.append(prompt.to_messages())
        return prompt

    model = GenericFakeChatModel(messages=iter(["Hello Ada.", AIMessage("You are Ada.", id="r2")]))
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    chain = RunnableWithMessageHistory(
        prompt | RunnableLambda(record) | model,
        lambda session_id: DocStoreChatMessageHistory(store, session_id),
        input_messages_key="question",
        history_messages_key="history",
    )
    config: Any = {"configurable": {"session_id": "ada"}}
    assert chain.invoke({"question": "I am Ada."}, config=config).content == "Hello Ada."
    assert chain.invoke({"question": "Who am I?"}, config=config).content == "You are Ada."
    # The second call's prompt held the first exchange, read back from the store.
    assert [(type(m).__name__, m.content) for m in seen[1]] == [
        ("SystemMessage", "Be brief."),
        ("HumanMessage", "I am Ada."),
        ("AIMessage", "Hello Ada."),
        ("HumanMessage", "Who am I?"),
    ]
    stored = DocStoreChatMessageHistory(store, "ada").messages
    assert [(type(m).__name__, m.content) for m in stored] == [
        ("HumanMessage", "I am Ada."),
        ("AIMessage", "Hello Ada."),
        ("HumanMessage", "Who am I?"),
        ("AIMessage", "You are Ada."),
    ]
