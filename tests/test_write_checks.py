# Generated from tests/test_write_checks_async.py by .ci/async_to_sync.py: do not edit.
# Change tests/test_write_checks_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""Arguments refused before any SQL runs, and metadata checked on the way in."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Factory
from pydantic import BaseModel, Field, model_validator

from docstore import DocStore, DocumentInvalid, InvalidFilter


class Config(BaseModel):
    value: int


class Meta(BaseModel):
    agent_name: str = Field(min_length=1)
    turns: int = 0


class Message(BaseModel):
    text: str


@pytest.fixture
def store(docstore_factory: Factory) -> DocStore:
    """A fresh store of this module's shell (in place of conftest's ``store``)."""
    return docstore_factory()


def _kinds(store: DocStore) -> None:
    store.register("config", Config)
    store.register("chat", Message, mode="log", meta=Meta)


@pytest.mark.parametrize("where", ["top", "field", "and"])
def test_a_filter_nested_thousands_deep_is_an_invalid_filter(store: DocStore, where: str) -> None:
    _kinds(store)
    store.put("config", "a", {"value": 1})
    deep: dict[str, Any]
    if where == "top":
        deep = {"value": 1}
        for _ in range(5000):
            deep = {"$not": deep}
    elif where == "field":
        inner: dict[str, Any] = {"$gt": 0}
        for _ in range(5000):
            inner = {"$not": inner}
        deep = {"value": inner}
    else:
        deep = {"value": 1}
        for _ in range(5000):
            deep = {"$and": [deep]}
    with pytest.raises(InvalidFilter, match="deep"):
        store.list("config", where=deep)


def test_a_filter_nested_a_little_still_works(store: DocStore) -> None:
    _kinds(store)
    store.put("config", "a", {"value": 1})
    deep: dict[str, Any] = {"value": 1}
    for _ in range(20):
        deep = {"$not": {"$not": deep}}
    assert [d.name for d in store.list("config", where=deep)] == ["a"]


@pytest.mark.parametrize("bad", [True, False, 1.0, "1"])
def test_expected_version_that_is_not_an_int_is_refused_before_any_sql(store: DocStore, bad: Any) -> None:
    _kinds(store)
    store.put("config", "a", {"value": 1})

    def call(verb: str) -> object:
        if verb == "put":
            return store.put("config", "a", {"value": 2}, expected_version=bad)
        if verb == "delete":
            return store.delete("config", "a", expected_version=bad)
        return store.append("chat", "c", [{"text": "x"}], meta={"agent_name": "a"}, expected_version=bad)

    for verb in ("put", "delete", "append"):
        with pytest.raises(ValueError, match="expected_version"):
            call(verb)
    assert (store.get("config", "a")).version == 1


def test_meta_update_is_validated_merged_with_the_stored_metadata(store: DocStore) -> None:
    _kinds(store)
    store.append("chat", "c", [{"text": "hi"}], meta={"agent_name": "bot"})
    for bad in ({"agent_name": 5}, {"agent_name": ""}, {"turns": "many"}):
        with pytest.raises(DocumentInvalid) as err:
            store.append("chat", "c", [{"text": "x"}], meta_update=bad)
        assert "chat 'c'" in str(err.value)
    assert (store.get("chat", "c")).data == Meta(agent_name="bot")
    assert store.read("chat", "c") == [Message(text="hi")]
    store.append("chat", "c", [{"text": "ok"}], meta_update={"turns": 2})
    doc = store.get("chat", "c")
    assert doc.data == Meta(agent_name="bot", turns=2) and doc.count == 2


class RangeMeta(BaseModel):
    low: int = 0
    high: int = 10

    @model_validator(mode="after")
    def ordered(self) -> RangeMeta:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


def test_meta_update_is_checked_against_cross_field_rules_of_the_stored_metadata(
    store: DocStore,
) -> None:
    store.register("ranged", Message, mode="log", meta=RangeMeta)
    store.append("ranged", "r", [{"text": "a"}], meta={"low": 5, "high": 8})
    with pytest.raises(DocumentInvalid, match="low must not exceed high"):
        store.append("ranged", "r", [{"text": "b"}], meta_update={"low": 9})
    assert (store.get("ranged", "r")).data == RangeMeta(low=5, high=8)
    assert store.append("ranged", "r", [{"text": "c"}], meta_update={"high": 20}) == 2
    assert store.append("ranged", "r", [], meta_update={"low": 15}) == 2
    assert (store.get("ranged", "r")).data == RangeMeta(low=15, high=20)
