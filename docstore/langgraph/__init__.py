"""LangGraph on docstore: ``pip install 'docstore[langgraph]'``.

:class:`DocStoreStore` is a LangGraph ``BaseStore`` whose items keep their history (see
docs/langgraph-store.md).
"""

from __future__ import annotations

try:
    import langgraph.store.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by tests/test_langgraph_install.py
    from docstore.extras import install_extra

    raise ImportError(
        f"docstore.langgraph needs langgraph, which is not installed: {install_extra('langgraph')}"
    ) from exc

from ._store import DocStoreStore, VectorIndexConfig, VectorSearchUnavailable

__all__ = ["DocStoreStore", "VectorIndexConfig", "VectorSearchUnavailable"]
