"""The checkpointer's operations as plans free of I/O, shared by the sync and the async
saver: a plan yields a :class:`Call` of a docstore method and receives its result, as
docstore's own plans yield statements."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from docstore import Items

from ._records import CHECKPOINTS, WRITES, CheckpointRecord, WriteRecord

__all__ = ["Call", "Plan"]

T = TypeVar("T")

# How many thread ids a plan reads from the heads at a time when it walks every thread.
_PAGE = 1000
# Up to this many checkpoints, a list reads only their writes; beyond, all the thread's.
_WRITES_BY_ID = 100


class Call(NamedTuple):
    """A call of a docstore store's method, which the saver runs and sends back."""

    method: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = MappingProxyType({})


Plan = Generator[Call, Any, T]


def _thread(config: RunnableConfig) -> tuple[Any, str, str]:
    """(thread_id as given, the document name, checkpoint_ns) of a config."""
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise ValueError("langgraph checkpointer: the config has no configurable.thread_id")
    return thread_id, str(thread_id), str(configurable.get("checkpoint_ns") or "")


def put(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> Plan[RunnableConfig]:
    """Append the checkpoint, whole, to its thread's log: one statement."""
    thread_id, name, ns = _thread(config)
    type_, blob = serde.dumps_typed(checkpoint)
    record = CheckpointRecord(
        ns=ns,
        id=checkpoint["id"],
        parent=get_checkpoint_id(config),
        type=type_,
        blob=blob,
        metadata=dict(get_serializable_checkpoint_metadata(config, metadata)),
    )
    yield Call("append", (CHECKPOINTS, name, [record]))
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}


def put_writes(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> Plan[None]:
    """Append a task's writes to its thread's log of writes: one statement."""
    _, name, ns = _thread(config)
    checkpoint_id = get_checkpoint_id(config)
    if checkpoint_id is None:
        raise ValueError("langgraph checkpointer: put_writes needs a config with a checkpoint_id")
    records = []
    for idx, (channel, value) in enumerate(writes):
        type_, blob = serde.dumps_typed(value)
        records.append(
            WriteRecord(
                ns=ns,
                checkpoint_id=checkpoint_id,
                task_id=task_id,
                task_path=task_path,
                idx=WRITES_IDX_MAP.get(channel, idx),
                channel=channel,
                type=type_,
                blob=blob,
            )
        )
    if records:
        yield Call("append", (WRITES, name, records))


def get_tuple(serde: SerializerProtocol, config: RunnableConfig) -> Plan[CheckpointTuple | None]:
    """The checkpoint named, or the namespace's newest: the newest matching item (an
    index scan backwards from the log's end), then its writes."""
    thread_id, name, ns = _thread(config)
    where: dict[str, Any] = {"ns": ns}
    checkpoint_id = get_checkpoint_id(config)
    if checkpoint_id is not None:
        where["id"] = checkpoint_id
    found: list[CheckpointRecord] = yield Call("read", (CHECKPOINTS, name), {"last": 1, "where": where})
    if not found:
        return None
    record = found[0]
    writes: list[WriteRecord] = yield Call(
        "read", (WRITES, name), {"where": {"ns": ns, "checkpoint_id": record.id}}
    )
    return _tuple(serde, thread_id, record, _pending(serde, writes).get((ns, record.id), []))


def list_(
    serde: SerializerProtocol,
    config: RunnableConfig | None,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
) -> Plan[list[CheckpointTuple]]:
    """Checkpoints newest first (by id), filtered in the server's statement; every
    thread's when ``config`` is None."""
    configurable = (config or {}).get("configurable") or {}
    where: dict[str, Any] = {}
    if "checkpoint_ns" in configurable:
        where["ns"] = str(configurable["checkpoint_ns"] or "")
    if config is not None and (checkpoint_id := get_checkpoint_id(config)) is not None:
        where["id"] = checkpoint_id
    if before is not None and (before_id := get_checkpoint_id(before)) is not None:
        where["id$"] = {"$lt": before_id}
    if filter:
        where["metadata"] = filter
    where = _id_clauses(where)
    if config is not None:
        thread_id, name, _ = _thread(config)
        threads: list[tuple[Any, str]] = [(thread_id, name)]
    else:
        threads = [(n, n) for n in (yield from _thread_names())]
    found: list[tuple[Any, CheckpointRecord]] = []
    for thread_id, name in threads:
        records = yield from _matching(name, where, limit)
        found.extend((thread_id, r) for r in records)
    found.sort(key=lambda pair: pair[1].id, reverse=True)
    if limit is not None:
        found = found[:limit]
    out: list[CheckpointTuple] = []
    by_thread: dict[str, list[tuple[Any, CheckpointRecord]]] = {}
    for pair in found:
        by_thread.setdefault(str(pair[0]), []).append(pair)
    pending: dict[str, dict[tuple[str, str], list[PendingWrite]]] = {}
    for name, pairs in by_thread.items():
        wanted: dict[str, Any] = {}
        if "ns" in where:
            wanted["ns"] = where["ns"]
        if len(pairs) <= _WRITES_BY_ID:
            wanted["checkpoint_id"] = {"$in": sorted({r.id for _, r in pairs})}
        writes: list[WriteRecord] = yield Call("read", (WRITES, name), {"where": wanted or None})
        pending[name] = _pending(serde, writes)
    for thread_id, record in found:
        writes_of = pending[str(thread_id)].get((record.ns, record.id), [])
        out.append(_tuple(serde, thread_id, record, writes_of))
    return out


def _matching(name: str, where: dict[str, Any], limit: int | None) -> Plan[list[CheckpointRecord]]:
    """A thread's checkpoints matching ``where``, one per id; with ``limit``, a set that
    holds the ``limit`` greatest ids without reading every checkpoint of the thread.

    The newest ``limit`` items are those greatest ids when ids were appended in order
    (LangGraph's are time-ordered). A second read of the items whose id is above the
    window's smallest catches any appended out of order, so the answer is exact either way.
    """
    if limit is None or limit <= 0:
        items: Items[CheckpointRecord] = yield Call("read", (CHECKPOINTS, name), {"where": where or None})
        return _latest_by_id(items)
    items = yield Call("read", (CHECKPOINTS, name), {"last": limit, "where": where or None})
    distinct = {(r.ns, r.id) for r in items}
    if len(items) == limit and len(distinct) < limit:
        # A checkpoint put twice: the window may hold fewer ids than asked; read them all.
        items = yield Call("read", (CHECKPOINTS, name), {"where": where or None})
    elif len(items) == limit:
        above = {"id": {"$gt": min(r.id for r in items)}}
        more: Items[CheckpointRecord] = yield Call(
            "read", (CHECKPOINTS, name), {"where": {"$and": [where, above]} if where else above}
        )
        by_version = dict(zip(items.versions, items, strict=True))
        by_version.update(zip(more.versions, more, strict=True))
        return _latest_by_id(by_version[v] for v in sorted(by_version))
    return _latest_by_id(items)


def delete_thread(thread_id: str) -> Plan[None]:
    """Purge the thread's two logs: every item of them, for good."""
    yield Call("purge", (CHECKPOINTS, [str(thread_id)]))
    yield Call("purge", (WRITES, [str(thread_id)]))


def copy_thread(source: str, target: str) -> Plan[None]:
    """Append every checkpoint and write of ``source`` to ``target``'s logs."""
    records: list[CheckpointRecord] = yield Call("read", (CHECKPOINTS, str(source)))
    writes: list[WriteRecord] = yield Call("read", (WRITES, str(source)))
    if records:
        yield Call("append", (CHECKPOINTS, str(target), records))
    if writes:
        yield Call("append", (WRITES, str(target), writes))


def prune(thread_ids: Sequence[str], strategy: str) -> Plan[None]:
    """``keep_latest``: each namespace's newest checkpoint and its writes stay;
    ``delete``: the threads go."""
    names = [str(t) for t in thread_ids]
    if strategy not in ("keep_latest", "delete"):
        raise ValueError(
            f"langgraph checkpointer: prune strategy must be 'keep_latest' or 'delete', not {strategy!r}"
        )
    if not names:
        return
    if strategy == "delete":
        yield Call("purge", (CHECKPOINTS, names))
        yield Call("purge", (WRITES, names))
        return
    for name in names:
        records: list[CheckpointRecord] = yield Call("read", (CHECKPOINTS, name))
        newest: dict[str, CheckpointRecord] = {}
        for record in _latest_by_id(records):
            if record.ns not in newest or record.id > newest[record.ns].id:
                newest[record.ns] = record
        if len(newest) < len(records):
            yield from _replace(name, list(newest.values()))


def delete_for_runs(run_ids: Sequence[str]) -> Plan[None]:
    """Remove the checkpoints whose metadata's ``run_id`` is one of ``run_ids``, and their
    writes, from every thread: one filtered read per thread, a rewrite where one matched."""
    wanted = [str(r) for r in run_ids]
    if not wanted:
        return
    for name in (yield from _thread_names()):
        hits: list[CheckpointRecord] = yield Call(
            "read", (CHECKPOINTS, name), {"where": {"metadata.run_id": {"$in": wanted}}}
        )
        if not hits:
            continue
        records: list[CheckpointRecord] = yield Call("read", (CHECKPOINTS, name))
        gone = set(wanted)
        yield from _replace(name, [r for r in records if r.metadata.get("run_id") not in gone])


def _replace(name: str, keep: list[CheckpointRecord]) -> Plan[None]:
    """Purge a thread and append back ``keep`` and their writes, so what went is gone
    from the tables, not only from the live items."""
    kept = {(r.ns, r.id) for r in keep}
    writes: list[WriteRecord] = yield Call("read", (WRITES, name))
    keep_writes = [w for w in writes if (w.ns, w.checkpoint_id) in kept]
    yield Call("purge", (CHECKPOINTS, [name]))
    yield Call("purge", (WRITES, [name]))
    if keep:
        yield Call("append", (CHECKPOINTS, name, keep))
    if keep_writes:
        yield Call("append", (WRITES, name, keep_writes))


def _thread_names() -> Plan[list[str]]:
    """Every thread's id, from the checkpoint log heads, a page at a time."""
    names: list[str] = []
    after: str | None = None
    while True:
        heads = yield Call("list", (CHECKPOINTS,), {"limit": _PAGE, "after": after})
        names.extend(doc.name for doc in heads)
        if len(heads) < _PAGE:
            return names
        after = heads[-1].name


def _id_clauses(where: dict[str, Any]) -> dict[str, Any]:
    """An exact id and a ``before`` bound are both on ``id``: an ``$and`` holds both."""
    bound = where.pop("id$", None)
    if bound is None:
        return where
    if "id" in where:
        return {"$and": [where, {"id": bound}]}
    where["id"] = bound
    return where


def _latest_by_id(records: Iterable[CheckpointRecord]) -> list[CheckpointRecord]:
    """One record per (ns, id): a checkpoint put again replaces the earlier one."""
    by_key: dict[tuple[str, str], CheckpointRecord] = {}
    for record in records:
        by_key[(record.ns, record.id)] = record
    return list(by_key.values())


def _pending(
    serde: SerializerProtocol, writes: Iterable[WriteRecord]
) -> dict[tuple[str, str], list[PendingWrite]]:
    """Writes by (ns, checkpoint id), in ``writes_sort_key`` order. A (task, idx) written
    twice counts once: the first of a regular write (a retried task writes the same), the
    last of a special one (an error or interrupt replaces the previous)."""
    chosen: dict[tuple[str, str, str, int], WriteRecord] = {}
    for write in writes:
        key = (write.ns, write.checkpoint_id, write.task_id, write.idx)
        if write.idx < 0 or key not in chosen:
            chosen[key] = write
    out: dict[tuple[str, str], list[tuple[tuple[str, str, int], PendingWrite]]] = {}
    for write in chosen.values():
        value = serde.loads_typed((write.type, write.blob))
        out.setdefault((write.ns, write.checkpoint_id), []).append(
            ((write.task_path, write.task_id, write.idx), (write.task_id, write.channel, value))
        )
    return {key: [w for _, w in sorted(items, key=lambda pair: pair[0])] for key, items in out.items()}


def _tuple(
    serde: SerializerProtocol, thread_id: Any, record: CheckpointRecord, writes: list[PendingWrite]
) -> CheckpointTuple:
    checkpoint: Checkpoint = serde.loads_typed((record.type, record.blob))

    def config(checkpoint_id: str) -> RunnableConfig:
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": record.ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    return CheckpointTuple(
        config=config(record.id),
        checkpoint=checkpoint,
        metadata=record.metadata,  # type: ignore[arg-type]
        parent_config=None if record.parent is None else config(record.parent),
        pending_writes=writes,
    )
