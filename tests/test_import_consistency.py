"""A restore produces a consistent store (each head agrees with its version rows, later
writes work) or writes nothing and says why, whatever the batch size."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import count_rows
from pydantic import BaseModel

from docstore import DocStore, DocStoreError

BATCHES = [1, 2, 7, 1000]


class Config(BaseModel):
    value: int


class Message(BaseModel):
    text: str


def _source(docstore_factory: Callable[..., DocStore]) -> DocStore:
    store = docstore_factory()
    store.register("config", Config)
    store.register("chat", Message, mode="log")
    store.put("config", "a", {"value": 1})
    store.put("config", "a", {"value": 2})
    store.append("chat", "c", [{"text": "1"}, {"text": "2"}])
    store.put("config", "z", {"value": 1})
    return store


def _target(docstore_factory: Callable[..., DocStore]) -> DocStore:
    store = docstore_factory()
    store.register("config", Config)
    store.register("chat", Message, mode="log")
    return store


def _nothing_written(store: DocStore) -> None:
    for table in ("documents", "versions"):
        assert count_rows(store, table, "config") == 0
        assert count_rows(store, table, "chat") == 0


@pytest.mark.parametrize("batch", BATCHES)
def test_two_exports_concatenated_are_refused_and_nothing_is_written(
    docstore_factory: Callable[..., DocStore], batch: int
) -> None:
    source = _source(docstore_factory)
    first = list(source.export())
    source.put("config", "a", {"value": 3})
    source.append("chat", "c", [{"text": "3"}])
    second = list(source.export())
    target = _target(docstore_factory)
    with pytest.raises(DocStoreError, match="line") as err:
        target.import_lines(first + second, batch_size=batch)
    assert "nothing was written" in str(err.value)
    _nothing_written(target)


@pytest.mark.parametrize("batch", BATCHES)
def test_a_file_cut_inside_a_document_is_refused_and_nothing_is_written(
    docstore_factory: Callable[..., DocStore], batch: int
) -> None:
    lines = list(_source(docstore_factory).export())
    # The chat log's head, then only its first item: the file was cut at a line end.
    cut = [i for i, line in enumerate(lines) if '"kind": "chat"' in line][1] + 1
    target = _target(docstore_factory)
    with pytest.raises(DocStoreError, match="chat 'c'") as err:
        target.import_lines(lines[:cut], batch_size=batch)
    assert "nothing was written" in str(err.value)
    _nothing_written(target)


@pytest.mark.parametrize("batch", BATCHES)
def test_a_file_cut_between_documents_restores_a_consistent_store(
    docstore_factory: Callable[..., DocStore], batch: int
) -> None:
    lines = list(_source(docstore_factory).export())
    cut = next(i for i, line in enumerate(lines) if '"name": "z"' in line)
    target = _target(docstore_factory)
    assert target.import_lines(lines[:cut], batch_size=batch) == (2, 4)
    assert target.put("config", "a", {"value": 9}).version == 3
    assert target.append("chat", "c", [{"text": "3"}]) == 3
    assert [m.text for m in target.read("chat", "c")] == ["1", "2", "3"]


@pytest.mark.parametrize("batch", BATCHES)
def test_version_lines_out_of_place_are_refused(
    docstore_factory: Callable[..., DocStore], batch: int
) -> None:
    lines = list(_source(docstore_factory).export())
    head_a, v1, v2 = lines[2:5] if '"kind": "config"' in lines[2] else lines[0:3]
    target = _target(docstore_factory)
    for bad in (
        [v1, head_a, v2],  # a version before its head
        [head_a, v2, v1],  # versions out of order
        [head_a, v1, v1, v2],
    ):  # a version twice
        with pytest.raises(DocStoreError, match="nothing was written"):
            target.import_lines(bad, batch_size=batch)
        _nothing_written(target)
