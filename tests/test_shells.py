"""Each sync/async pair is one shell written twice (DocStore and AsyncDocStore,
StorageManager and AsyncStorageManager): the sync one must be the async one with
``async``/``await`` taken out, so that they cannot drift apart (a peer's sync ``setup()``
kept a docstring saying "asynchronously" for years). Their logic is shared already, in
docstore/_core.py and docstore/agents/_manager.py."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "docstore"

# Whole words of the async shell and their sync counterparts, applied in order.
RENAMES = [
    ("AsyncStorageManager", "StorageManager"),
    ("AsyncConfigWatch", "ConfigWatch"),
    ("the asyncio store", "the synchronous store"),
    ("(asyncio API)", "(synchronous API)"),
    ("docstore_async_transaction", "docstore_transaction"),
    ("AsyncIterator", "Iterator"),
    ("asynccontextmanager", "contextmanager"),
    ("AsyncConnectionPool", "ConnectionPool"),
    ("AsyncConnection", "Connection"),
    ("AsyncDocStore", "DocStore"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("async with ", "with "),
    ("async for ", "for "),
    ("async def ", "def "),
    ("await ", ""),
]


def body(source: str) -> str:
    """The source after its module docstring."""
    return source[source.index("from __future__") :]


def normalised(source: str) -> str:
    """The module's syntax tree, so that layout (line breaks, trailing commas, parentheses
    the formatter adds) does not count, with the names of each import sorted, so that
    re-sorted imports compare equal. Comments are not compared."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            node.names.sort(key=lambda alias: alias.name)
    return ast.dump(tree, include_attributes=False)


def assert_twins(async_source: str, sync_source: str) -> None:
    for old, new in RENAMES:
        async_source = async_source.replace(old, new)
    expected = normalised(async_source).split("), ")
    actual = normalised(sync_source).split("), ")
    mismatches = [(i, e, a) for i, (e, a) in enumerate(zip(expected, actual, strict=False)) if e != a]
    assert not mismatches, "first difference (node, implied by async, in sync): " + repr(mismatches[0])
    assert len(expected) == len(actual)


def test_the_sync_store_is_the_async_store_without_async_and_await() -> None:
    assert_twins(body((PACKAGE / "aio.py").read_text()), body((PACKAGE / "store.py").read_text()))


def test_the_sync_storage_manager_is_the_async_one_without_async_and_await() -> None:
    source = (PACKAGE / "agents" / "storage.py").read_text()
    sync = source[source.index("class StorageManager:") : source.index("class AsyncStorageManager:")]
    async_ = source[source.index("class AsyncStorageManager:") : source.index("\ndef sync_path(")]
    assert_twins(async_, sync)
