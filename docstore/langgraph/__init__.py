"""LangGraph on docstore: ``pip install 'docstore[langgraph]'``.

:class:`DocStoreSaver` and :class:`AsyncDocStoreSaver` are LangGraph checkpointers that
keep a thread's checkpoints and pending writes in docstore's tables (docs/langgraph.md);
:class:`DocStoreStore` is a LangGraph ``BaseStore`` whose items keep their history
(docs/langgraph-store.md).
"""

from __future__ import annotations

try:
    import langgraph.checkpoint.base
    import langgraph.store.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by tests/langgraph/test_langgraph_install.py
    from docstore.extras import install_extra

    raise ImportError(
        f"docstore.langgraph needs langgraph, which is not installed: {install_extra('langgraph')}"
    ) from exc

from ._checkpoint import AsyncDocStoreSaver, DocStoreSaver
from ._records import CHECKPOINTS, WRITES, CheckpointRecord, WriteRecord
from ._store import DocStoreStore, VectorIndexConfig, VectorSearchUnavailable

__all__ = [
    "CHECKPOINTS",
    "WRITES",
    "AsyncDocStoreSaver",
    "CheckpointRecord",
    "DocStoreSaver",
    "DocStoreStore",
    "VectorIndexConfig",
    "VectorSearchUnavailable",
    "WriteRecord",
]
