"""A session's LangChain messages as one document of a docstore log kind.

Each message is a version of the log: an append costs the same whatever the session's
length, ``last=`` reads only the tail, and ``clear()`` keeps the old messages readable by
version until the kind is pruned (docs/history.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Annotated, Any, cast

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
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
from pydantic import Discriminator, Tag, TypeAdapter

from docstore import AsyncDocStore, DocStore, DocumentNotFound, LogKind

__all__ = ["MESSAGE_TYPES", "DocStoreChatMessageHistory", "LangChainMessage", "register_messages"]

DEFAULT_KIND = "langchain_message"

# Every concrete BaseMessage class langchain-core defines (tests/test_langchain.py fails
# when a release adds one that is missing here).
MESSAGE_TYPES: tuple[type[BaseMessage], ...] = (
    AIMessage,
    AIMessageChunk,
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


def _tag(value: Any) -> str | None:
    """A message's ``type`` field, which names its class (``ai``, ``AIMessageChunk``...)."""
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return found if isinstance(found, str) else None


def _type_of(cls: type[BaseMessage]) -> str:
    return str(cls.model_fields["type"].default)


# LangChain's own AnyMessage leaves RemoveMessage out, and a Discriminator needs literal
# tags: this union takes every class above, chosen by its `type`.
LangChainMessage = Annotated[
    Annotated[AIMessage, Tag(_type_of(AIMessage))]
    | Annotated[AIMessageChunk, Tag(_type_of(AIMessageChunk))]
    | Annotated[ChatMessage, Tag(_type_of(ChatMessage))]
    | Annotated[ChatMessageChunk, Tag(_type_of(ChatMessageChunk))]
    | Annotated[FunctionMessage, Tag(_type_of(FunctionMessage))]
    | Annotated[FunctionMessageChunk, Tag(_type_of(FunctionMessageChunk))]
    | Annotated[HumanMessage, Tag(_type_of(HumanMessage))]
    | Annotated[HumanMessageChunk, Tag(_type_of(HumanMessageChunk))]
    | Annotated[RemoveMessage, Tag(_type_of(RemoveMessage))]
    | Annotated[SystemMessage, Tag(_type_of(SystemMessage))]
    | Annotated[SystemMessageChunk, Tag(_type_of(SystemMessageChunk))]
    | Annotated[ToolMessage, Tag(_type_of(ToolMessage))]
    | Annotated[ToolMessageChunk, Tag(_type_of(ToolMessageChunk))],
    Discriminator(_tag),
]


_MESSAGE: TypeAdapter[BaseMessage] = TypeAdapter(LangChainMessage)
Messages = LogKind[BaseMessage, dict[Any, Any]]


def register_messages(store: DocStore | AsyncDocStore, kind: str = DEFAULT_KIND) -> Messages:
    """The log kind of LangChain messages on ``store``, registered if it is not yet."""
    if kind in store.kinds:
        return cast(Messages, store.kinds.get(kind, "log"))
    return store.register(kind, _MESSAGE, mode="log", meta=dict)


class DocStoreChatMessageHistory(BaseChatMessageHistory):
    """One session's messages, a document of a docstore log kind.

    ``store`` is a :class:`DocStore`, or an :class:`AsyncDocStore` (then use the ``a``
    methods: ``aget_messages``, ``aadd_messages``, ``aclear``). ``last=N`` makes
    ``messages`` the session's last N messages (a window for the model's context), read
    without touching the older ones.
    """

    def __init__(
        self,
        store: DocStore | AsyncDocStore,
        session_id: str,
        *,
        kind: str = DEFAULT_KIND,
        last: int | None = None,
    ) -> None:
        if last is not None and last < 1:
            raise ValueError(f"last must be at least 1, not {last!r}")
        self.store = store
        self.session_id = session_id
        self.last = last
        self.kind = register_messages(store, kind)

    def _sync(self, method: str) -> DocStore:
        if isinstance(self.store, DocStore):
            return self.store
        raise TypeError(f"{method}() on an AsyncDocStore: use a{method}() instead")

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's messages, oldest first (the last ``last`` of them if set)."""
        try:
            return self._sync("get_messages").read(self.kind, self.session_id, last=self.last)
        except DocumentNotFound:
            return []

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in one statement (all or none)."""
        if messages:
            self._sync("add_messages").append(self.kind, self.session_id, list(messages))

    def clear(self) -> None:
        """Empty the session (its messages stay readable by version until pruned)."""
        with contextlib.suppress(DocumentNotFound):
            self._sync("clear").clear(self.kind, self.session_id)

    async def aget_messages(self) -> list[BaseMessage]:
        """``messages``, awaited."""
        if isinstance(self.store, DocStore):
            return await super().aget_messages()
        try:
            return await self.store.read(self.kind, self.session_id, last=self.last)
        except DocumentNotFound:
            return []

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """``add_messages``, awaited."""
        if isinstance(self.store, DocStore):
            await super().aadd_messages(messages)
        elif messages:
            await self.store.append(self.kind, self.session_id, list(messages))

    async def aclear(self) -> None:
        """``clear``, awaited."""
        if isinstance(self.store, DocStore):
            await super().aclear()
            return
        with contextlib.suppress(DocumentNotFound):
            await self.store.clear(self.kind, self.session_id)
