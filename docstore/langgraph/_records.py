"""What a LangGraph thread stores: its checkpoints and its pending writes, each an item
of a log kind whose document name is the thread's id.

Every document of a thread has the thread's id as its name, so under Citus (distributed
on ``name``, docs/scaling.md) a thread's checkpoints and writes are one shard's, and
every call that names a thread is a router query.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from docstore.kinds import LogKind, Registry

__all__ = ["CHECKPOINTS", "WRITES", "CheckpointRecord", "WriteRecord"]

# Serialised values are bytes; JSON holds them as base64 (validated back to bytes on read).
_BLOBS = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")


class CheckpointRecord(BaseModel):
    """One checkpoint: the serde's typed bytes of the whole checkpoint (channel values
    included) and its metadata as JSON, which ``list(filter=...)`` searches."""

    model_config = _BLOBS

    ns: str
    id: str
    parent: str | None = None
    type: str
    blob: bytes
    metadata: dict[str, Any]


class WriteRecord(BaseModel):
    """One pending write of a task, for the checkpoint ``checkpoint_id`` of ``ns``."""

    model_config = _BLOBS

    ns: str
    checkpoint_id: str
    task_id: str
    task_path: str = ""
    idx: int
    channel: str
    type: str
    blob: bytes


_kinds = Registry()
CHECKPOINTS: LogKind[CheckpointRecord, dict[str, object]] = _kinds.register(
    "langgraph_checkpoint", CheckpointRecord, mode="log"
)
"""The ``langgraph_checkpoint`` log kind: one log per thread, one item per checkpoint put."""
WRITES: LogKind[WriteRecord, dict[str, object]] = _kinds.register("langgraph_write", WriteRecord, mode="log")
"""The ``langgraph_write`` log kind: one log per thread, one item per pending write."""
