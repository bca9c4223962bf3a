"""LangGraph on docstore: checkpointers (:class:`DocStoreSaver`, :class:`AsyncDocStoreSaver`)
that keep a thread's checkpoints and pending writes in docstore's tables. Needs the
``langgraph`` extra. See docs/langgraph.md.
"""

from docstore.extras import install_extra

try:
    import langgraph.checkpoint.base  # noqa: F401 (only to say what is missing)
except ImportError as exc:  # pragma: no cover - tests/langgraph/test_langgraph_install.py
    raise ImportError(f"docstore.langgraph needs LangGraph: {install_extra('langgraph')}") from exc

from ._checkpoint import AsyncDocStoreSaver, DocStoreSaver
from ._records import CHECKPOINTS, WRITES, CheckpointRecord, WriteRecord

__all__ = ["CHECKPOINTS", "WRITES", "AsyncDocStoreSaver", "CheckpointRecord", "DocStoreSaver", "WriteRecord"]
