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
    got = target.import_lines(lines[:cut], batch_size=batch)
    assert (got.documents, got.versions) == (2, 4)
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


@pytest.mark.parametrize("batch", [1, 1000])
def test_a_line_holding_what_jsonb_cannot_store_is_refused_naming_the_line_and_document(
    docstore_factory: Callable[..., DocStore], batch: int
) -> None:
    """Issue 24, break 9: \\u0000 (and a lone surrogate, NaN) in an import line failed
    with the server's bare UntranslatableCharacter, naming no line or document."""
    lines = list(_source(docstore_factory).export())
    at = next(i for i, line in enumerate(lines) if '"name": "z"' in line and '"t": "version"' in line)
    target = _target(docstore_factory)
    for bad, shown in (
        ('"value": 1, "note": "a\\u0000b"', "note contains \\u0000"),
        ('"value": 1, "k\\u0000": 1', "key contains \\u0000"),
        ('"value": 1, "note": "\\ud800"', "note contains a lone surrogate"),
        ('"value": NaN', "NaN"),
    ):
        broken = [*lines[:at], lines[at].replace('"value": 1', bad), *lines[at + 1 :]]
        with pytest.raises(DocStoreError) as err:
            target.import_lines(broken, batch_size=batch)
        message = str(err.value)
        assert message.startswith(f"import line {at + 1}: config 'z'"), message
        assert shown in message and "nothing was written" in message, message
        _nothing_written(target)


def test_versions_past_postgresqls_bigint_are_refused_and_the_last_one_cannot_be_written_past(
    docstore_factory: Callable[..., DocStore],
) -> None:
    """Issue 24, suspicion: a document imported at version 2**63-1 failed its next write
    with a bare NumericValueOutOfRange. A line past bigint is refused naming it; a write
    past the last version says which document and why, and writes nothing."""
    import json

    top = 2**63 - 1

    def lines(kind: str, name: str, version: int, mode: str = "snapshot") -> list[str]:
        when = "2026-01-01T00:00:00.000000Z"
        head = {"t": "document", "kind": kind, "name": name, "mode": mode, "version": version}
        head |= {"live_from": version, "schema_version": 1, "deleted": False}
        head |= {"created_at": when, "updated_at": when, "data": {} if mode == "log" else {"value": 1}}
        row = {"t": "version", "kind": kind, "name": name, "version": version, "schema_version": 1}
        row |= {"op": "append" if mode == "log" else "put", "author": None, "written_at": when}
        row |= {"data": {"text": "x"} if mode == "log" else {"value": 1}}
        return [json.dumps(head), json.dumps(row)]

    target = _target(docstore_factory)
    with pytest.raises(DocStoreError) as err:
        target.import_lines(lines("config", "a", top + 1))
    assert str(err.value).startswith("import line 1: config 'a': field 'version' is past 2**63-1")
    _nothing_written(target)
    assert target.import_lines(lines("chat", "c", top - 1, "log") + lines("config", "a", top)) == (2, 2)
    for write in (
        lambda: target.put("config", "a", {"value": 2}),
        lambda: target.delete("config", "a"),
        lambda: target.append("chat", "c", [{"text": "y"}, {"text": "z"}]),
    ):
        with pytest.raises(DocStoreError) as err:
            write()
        message = str(err.value)
        assert "2**63-1" in message and "nothing was written" in message, message
        assert "config 'a'" in message or "chat 'c'" in message, message
    assert target.get("config", "a").version == top
    assert target.append("chat", "c", [{"text": "y"}]) == top  # the last one still fits
    with pytest.raises(ValueError, match="expected_version"):
        target.put("config", "a", {"value": 2}, expected_version=top + 1)
    with pytest.raises(ValueError, match="schema_version is at most 2"):  # an integer column
        target.register("config", Config, schema_version=2**31, upgraders={1: lambda d: d})
