"""LangGraph on docstore: checkpointers (:class:`DocStoreSaver`, :class:`AsyncDocStoreSaver`)
that keep a thread's checkpoints and pending writes in docstore's tables. Needs the
``langgraph`` extra: ``pip install 'docstore[langgraph]'``. See docs/langgraph.md.
"""

from ._checkpoint import AsyncDocStoreSaver, DocStoreSaver
from ._records import CHECKPOINTS, WRITES, CheckpointRecord, WriteRecord

__all__ = ["CHECKPOINTS", "WRITES", "AsyncDocStoreSaver", "CheckpointRecord", "DocStoreSaver", "WriteRecord"]
