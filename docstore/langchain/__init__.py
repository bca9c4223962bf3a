"""LangChain's chat-message history on docstore: ``pip install 'docstore[langchain]'``.

:class:`DocStoreChatMessageHistory` keeps a session's messages as a docstore log (one
version per message), for ``RunnableWithMessageHistory`` and anything else that takes a
``BaseChatMessageHistory``. See docs/langchain.md.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by tests/test_langchain_install.py
    from docstore.extras import install_extra

    raise ImportError(
        f"docstore.langchain needs langchain-core, which is not installed: {install_extra('langchain')}"
    ) from exc

from ._history import MESSAGE_TYPES, DocStoreChatMessageHistory, LangChainMessage, register_messages

__all__ = ["MESSAGE_TYPES", "DocStoreChatMessageHistory", "LangChainMessage", "register_messages"]
