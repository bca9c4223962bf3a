"""Snapshot kinds: versioned writes, reads, deletes and reverts, on both store shells."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import PARTITIONS, AsyncFactory, acount_rows, alayout_of
from pydantic import BaseModel

from docstore import (
    AsyncDocStore,
    Doc,
    DocStoreError,
    DocumentInvalid,
    DocumentNotFound,
    InvalidKey,
    KindMismatch,
    UnknownKind,
    VersionConflict,
)
from docstore._snapshots import PUT_MANY_CHUNK


class LLM(BaseModel):
    model: str
    temperature: float = 0.7


class Agent(BaseModel):
    name: str
    llm: LLM
    tools: list[str] = []


def agent(name: str = "weather", model: str = "claude-sonnet", **extra: Any) -> dict[str, Any]:
    return {"name": name, "llm": {"model": model}, **extra}


@pytest.fixture
def astore(astore_both_layouts: AsyncDocStore) -> AsyncDocStore:
    """Every test here runs on a plain and on a hash-partitioned versions table as well."""
    return astore_both_layouts


async def test_the_versions_table_has_the_layout_asked_for(
    astore: AsyncDocStore, request: pytest.FixtureRequest
) -> None:
    partitioned = request.node.callspec.params["astore_both_layouts"] == "partitioned"
    assert await alayout_of(astore) == (("p", PARTITIONS) if partitioned else ("r", 0))


async def test_init_schema_keeps_the_layout_it_created_and_says_when_asked_for_another(
    adocstore_factory: AsyncFactory,
) -> None:
    plain = await adocstore_factory()
    with pytest.raises(DocStoreError, match=r"not partitioned.*partitions=8"):
        await plain.init_schema(partitions=8)
    parted = await adocstore_factory(partitions=4)
    assert await parted.init_schema() == await parted.init_schema(partitions=4)  # idempotent
    with pytest.raises(DocStoreError, match=r"hash-partitioned into 4.*partitions=8"):
        await parted.init_schema(partitions=8)
    bad_values: list[Any] = [0, -1, 1025, True, 2.0, "16"]
    for bad in bad_values:
        with pytest.raises(ValueError, match="partitions must be"):
            await parted.init_schema(partitions=bad)


@pytest.fixture
def s(astore: AsyncDocStore) -> AsyncDocStore:
    astore.register("agent", Agent)
    return astore


async def test_put_then_get_returns_the_validated_model_at_version_1(s: AsyncDocStore) -> None:
    written = await s.put("agent", "weather", agent())
    read = await s.get("agent", "weather")
    assert written.version == read.version == 1
    assert isinstance(read.data, Agent) and read.data.llm.model == "claude-sonnet"
    assert read.kind == "agent" and read.name == "weather" and not read.deleted
    assert read.created_at == read.updated_at
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.version = 5  # type: ignore[misc]


async def test_the_docs_returned_are_docs_and_a_subclass_of_doc_keeps_its_fields(s: AsyncDocStore) -> None:
    # Doc.__init__ builds a Doc as a private subclass of the same slots: none must leak.
    written = await s.put("agent", "weather", agent())
    read = await s.get("agent", "weather")
    assert type(written) is Doc and type(read) is Doc and written == read
    with pytest.raises(dataclasses.FrozenInstanceError):
        del read.name

    class Tagged(Doc[Agent]):  # a __dict__ of its own: another layout than Doc's
        pass

    values = [getattr(written, f.name) for f in dataclasses.fields(Doc)]
    tagged = Tagged(*values)
    assert type(tagged) is Tagged and [getattr(tagged, f.name) for f in dataclasses.fields(Doc)] == values
    assert tagged.changed is True


async def test_put_accepts_a_model_instance_and_stores_its_json(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", Agent(name="weather", llm=LLM(model="m", temperature=0.1)))
    async with s.pool.connection() as conn:
        cur = await conn.execute(
            f'SELECT data::text FROM "{s.schema}".documents WHERE name = %s', ["weather"]
        )
        row = await cur.fetchone()
    assert row is not None
    data = row[0]
    assert '"temperature": 0.1' in data


async def test_each_changed_put_adds_one_version_and_keeps_the_old_ones(s: AsyncDocStore) -> None:
    for model in ("a", "b", "c"):
        await s.put("agent", "weather", agent(model=model))
    assert [d.data.llm.model for d in await s.versions("agent", "weather")] == ["a", "b", "c"]
    assert (await s.get("agent", "weather", version=2)).data.llm.model == "b"
    assert (await s.get("agent", "weather")).version == 3


async def test_put_of_an_unchanged_value_writes_no_version(s: AsyncDocStore) -> None:
    first = await s.put("agent", "weather", agent())
    again = await s.put("agent", "weather", agent())
    assert again.version == first.version == 1
    assert await acount_rows(s, "versions", "agent", "weather") == 1
    assert again.updated_at == first.updated_at


async def test_expected_version_none_writes_whatever_the_current_version(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent(model="a"))
    assert (await s.put("agent", "weather", agent(model="b"), expected_version=None)).version == 2


async def test_expected_version_0_creates_a_new_document(s: AsyncDocStore) -> None:
    assert (await s.put("agent", "weather", agent(), expected_version=0)).version == 1


async def test_expected_version_0_on_an_existing_document_conflicts_and_writes_nothing(
    s: AsyncDocStore,
) -> None:
    await s.put("agent", "weather", agent(model="a"))
    with pytest.raises(VersionConflict) as info:
        await s.put("agent", "weather", agent(model="b"), expected_version=0)
    assert (info.value.kind, info.value.name, info.value.expected, info.value.actual) == (
        "agent",
        "weather",
        0,
        1,
    )
    assert (await s.get("agent", "weather")).data.llm.model == "a"
    assert await acount_rows(s, "versions", "agent") == 1


async def test_expected_version_n_matching_writes_version_n_plus_1(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent(model="a"))
    assert (await s.put("agent", "weather", agent(model="b"), expected_version=1)).version == 2


async def test_expected_version_n_stale_conflicts_with_the_actual_version(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent(model="a"))
    await s.put("agent", "weather", agent(model="b"))
    with pytest.raises(VersionConflict) as info:
        await s.put("agent", "weather", agent(model="c"), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert "expected to be at version 1, but it is at version 2" in str(info.value)
    assert (await s.get("agent", "weather")).data.llm.model == "b"


async def test_expected_version_n_on_a_missing_document_conflicts_with_actual_0(s: AsyncDocStore) -> None:
    with pytest.raises(VersionConflict) as info:
        await s.put("agent", "ghost", agent(), expected_version=3)
    assert (info.value.expected, info.value.actual) == (3, 0)
    assert await acount_rows(s, "documents", "agent") == 0


async def test_expected_version_with_an_unchanged_value_returns_the_current_doc(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent())
    assert (await s.put("agent", "weather", agent(), expected_version=1)).version == 1


async def test_get_of_a_missing_document_raises_document_not_found(s: AsyncDocStore) -> None:
    with pytest.raises(DocumentNotFound, match="agent 'nope' not found"):
        await s.get("agent", "nope")
    await s.put("agent", "weather", agent())
    with pytest.raises(DocumentNotFound, match="version 7"):
        await s.get("agent", "weather", version=7)


async def test_delete_writes_a_tombstone_and_get_then_raises(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent())
    assert await s.delete("agent", "weather") == 2
    with pytest.raises(DocumentNotFound):
        await s.get("agent", "weather")
    history = await s.versions("agent", "weather")
    assert [(d.version, d.deleted) for d in history] == [(1, False), (2, True)]
    assert history[1].data.name == "weather"  # the tombstone keeps what was deleted
    assert await s.list("agent") == []


async def test_delete_of_a_missing_or_deleted_document_raises_not_found(s: AsyncDocStore) -> None:
    with pytest.raises(DocumentNotFound):
        await s.delete("agent", "nope")
    await s.put("agent", "weather", agent())
    await s.delete("agent", "weather")
    with pytest.raises(DocumentNotFound):
        await s.delete("agent", "weather")


async def test_delete_with_a_stale_expected_version_conflicts(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent(model="a"))
    await s.put("agent", "weather", agent(model="b"))
    with pytest.raises(VersionConflict):
        await s.delete("agent", "weather", expected_version=1)
    assert (await s.get("agent", "weather")).version == 2


async def test_a_deleted_document_is_recreated_with_the_next_version(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent(model="a"))
    await s.delete("agent", "weather")
    again = await s.put("agent", "weather", agent(model="a"), expected_version=0)
    assert again.version == 3
    assert (await s.get("agent", "weather")).data.llm.model == "a"
    assert [d.version for d in await s.versions("agent", "weather")] == [1, 2, 3]


async def test_revert_writes_an_old_value_as_a_new_version(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent(model="a"))
    await s.put("agent", "weather", agent(model="b"))
    reverted = await s.revert("agent", "weather", to_version=1)
    assert reverted.version == 3 and reverted.data.llm.model == "a"
    assert [d.data.llm.model for d in await s.versions("agent", "weather")] == ["a", "b", "a"]
    with pytest.raises(VersionConflict):
        await s.revert("agent", "weather", to_version=2, expected_version=2)


async def test_revert_to_a_tombstone_restores_the_deleted_value(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent(model="a"))
    tomb = await s.delete("agent", "weather")
    assert (await s.revert("agent", "weather", to_version=tomb)).data.llm.model == "a"
    assert (await s.get("agent", "weather")).version == 3


async def test_get_many_returns_found_names_and_leaves_out_missing_ones(s: AsyncDocStore) -> None:
    await s.put("agent", "a", agent("a"))
    await s.put("agent", "b", agent("b"))
    await s.put("agent", "c", agent("c"))
    await s.delete("agent", "c")
    found = await s.get_many("agent", ["b", "a", "c", "zz"])
    assert list(found) == ["b", "a"]
    assert found["a"].data.name == "a"


async def test_list_returns_current_documents_in_name_order_filtered_and_paged(s: AsyncDocStore) -> None:
    for i, model in enumerate(["x", "y", "x", "x"]):
        await s.put("agent", f"a{i}", agent(f"a{i}", model=model))
    assert [d.name for d in await s.list("agent")] == ["a0", "a1", "a2", "a3"]
    assert [d.name for d in await s.list("agent", where={"llm": {"model": "x"}})] == ["a0", "a2", "a3"]
    assert [d.name for d in await s.list("agent", limit=2, after="a0")] == ["a1", "a2"]


async def test_iter_streams_every_document_across_batches(s: AsyncDocStore) -> None:
    await s.put_many("agent", {f"a{i:03}": agent(f"a{i:03}") for i in range(25)})
    names = [d.name async for d in s.iter("agent", batch_size=10)]
    assert names == [f"a{i:03}" for i in range(25)]


async def test_put_many_writes_all_in_input_order_and_skips_unchanged(s: AsyncDocStore) -> None:
    await s.put("agent", "b", agent("b"))
    docs = await s.put_many("agent", {"c": agent("c"), "b": agent("b"), "a": agent("a", model="z")})
    assert [(d.name, d.version) for d in docs] == [("c", 1), ("b", 1), ("a", 1)]
    docs = await s.put_many("agent", {"b": agent("b", model="new")})
    assert docs[0].version == 2
    assert await acount_rows(s, "versions", "agent") == 4


async def test_put_many_with_one_invalid_value_writes_nothing_and_names_it(s: AsyncDocStore) -> None:
    await s.put("agent", "keep", agent("keep"))
    values = {f"a{i}": agent(f"a{i}") for i in range(50)}
    values["a17"] = {"name": "a17"}  # no llm
    with pytest.raises(DocumentInvalid) as info:
        await s.put_many("agent", values)
    assert info.value.name == "a17" and "llm" in str(info.value)
    assert await acount_rows(s, "documents", "agent") == 1


async def test_put_many_past_one_chunk_pipelines_its_chunks_in_one_transaction(s: AsyncDocStore) -> None:
    # 2.5 chunks, given out of name order: returned in input order, all written; then a
    # bad value in the last chunk, found while the first chunks are on the server,
    # leaves nothing of that batch.
    n = PUT_MANY_CHUNK * 5 // 2
    names = [f"a{(i * 7919) % n:05}" for i in range(n)]
    docs = await s.put_many("agent", {name: agent(name) for name in names})
    assert [d.name for d in docs] == names and {d.version for d in docs} == {1}
    assert await acount_rows(s, "versions", "agent") == n
    values = {name: agent(name, model="v2") for name in names}
    last = max(names)
    values[last] = {"name": last}  # no llm
    with pytest.raises(DocumentInvalid) as info:
        await s.put_many("agent", values)
    assert info.value.name == last and "llm" in str(info.value)
    assert await acount_rows(s, "versions", "agent") == n
    assert (await s.get("agent", names[0])).version == 1


async def test_a_failed_put_many_past_one_chunk_inside_a_transaction_leaves_nothing(
    adocstore_factory: AsyncFactory,
) -> None:
    """Its first chunk is on the server when a later one fails to validate: a caller that
    catches the error and lets the block commit must not commit that first chunk."""
    astore = await adocstore_factory()
    astore.register("agent", Agent)
    n = PUT_MANY_CHUNK * 5 // 2
    values: dict[str, Any] = {f"a{i:05}": agent(f"a{i:05}") for i in range(n)}
    values[f"a{n - 1:05}"] = {"name": "no llm"}
    async with astore.transaction():
        await astore.put("agent", "kept", agent("kept"))
        with pytest.raises(DocumentInvalid):
            await astore.put_many("agent", values)
    assert [d.name for d in await astore.list("agent")] == ["kept"]
    assert await acount_rows(astore, "versions", "agent") == 1


async def test_invalid_value_raises_document_invalid_before_any_sql(s: AsyncDocStore) -> None:
    with pytest.raises(DocumentInvalid) as info:
        await s.put("agent", "weather", {"name": "weather", "llm": {"temperature": "hot"}})
    assert info.value.kind == "agent" and info.value.name == "weather"
    assert "llm.model: Field required" in str(info.value)
    assert await acount_rows(s, "documents", "agent") == 0


async def test_stored_data_that_no_longer_validates_raises_document_invalid(s: AsyncDocStore) -> None:
    await s.put("agent", "weather", agent())
    async with s.pool.connection() as conn:
        await conn.execute(
            f"UPDATE \"{s.schema}\".documents SET data = '{{\"name\": 5}}' WHERE name = 'weather'"
        )
    with pytest.raises(DocumentInvalid) as info:
        await s.get("agent", "weather")
    assert (info.value.kind, info.value.name, info.value.version) == ("agent", "weather", 1)
    assert "stored data" in str(info.value)
    await s.put("agent", "other", agent("other"))
    with pytest.raises(DocumentInvalid):
        await s.list("agent")
    assert [d.name for d in await s.list("agent", on_invalid="skip")] == ["other"]


async def test_unregistered_kind_raises_unknown_kind(s: AsyncDocStore) -> None:
    with pytest.raises(UnknownKind, match="kind 'tool' is not registered"):
        await s.put("tool", "x", {})


async def test_snapshot_operations_on_a_log_kind_raise_kind_mismatch(s: AsyncDocStore) -> None:
    s.register("conversation", dict, mode="log")
    with pytest.raises(KindMismatch):
        await s.put("conversation", "x", {})


@pytest.mark.parametrize(
    "name,problem",
    [
        ("", "must not be empty"),
        ("x" * 513, "at most 512 characters"),
        ("a\x00b", "\\u0000"),
        ("\ud800", "lone surrogate"),
    ],
)
async def test_bad_names_are_refused_with_a_clear_error(s: AsyncDocStore, name: str, problem: str) -> None:
    with pytest.raises(InvalidKey, match=problem.replace("\\", "\\\\")):
        await s.put("agent", name, agent())


@pytest.mark.parametrize(
    "name", ["it's", "100%_done", "a/b\\c", "line\nbreak", "🤖 agent", "مرحبا", "'; DROP TABLE documents; --"]
)
async def test_odd_names_are_stored_and_read_back_exactly(s: AsyncDocStore, name: str) -> None:
    await s.put("agent", name, agent())
    assert (await s.get("agent", name)).name == name
    assert [d.name for d in await s.list("agent")] == [name]


async def test_upgraders_bring_old_documents_up_to_date_on_read(astore: AsyncDocStore) -> None:
    class V1(BaseModel):
        model_name: str

    class V2(BaseModel):
        model: str
        provider: str

    astore.register("llm", V1)
    await astore.put("llm", "fast", {"model_name": "haiku"})
    astore.register(
        "llm",
        V2,
        schema_version=3,
        upgraders={
            1: lambda d: {"model": d.pop("model_name"), **d},
            2: lambda d: {**d, "provider": "anthropic"},
        },
    )
    doc = await astore.get("llm", "fast")
    assert doc.data == V2(model="haiku", provider="anthropic")
    assert doc.schema_version == 1
    assert await astore.upgrade("llm") == 1
    current = await astore.get("llm", "fast")
    assert (current.version, current.schema_version) == (2, 3)
    assert await astore.upgrade("llm") == 0


async def test_register_refuses_upgraders_that_leave_a_gap(astore: AsyncDocStore) -> None:
    with pytest.raises(ValueError, match=r"no upgrader from schema_version\(s\) \[2\]"):
        astore.register("llm", dict, schema_version=4, upgraders={1: dict, 3: dict})


async def test_a_write_says_whether_it_wrote(s: AsyncDocStore) -> None:
    assert (await s.put("agent", "a", agent())).changed is True
    same = await s.put("agent", "a", agent())
    assert same.changed is False and same.version == 1
    assert (await s.put("agent", "a", agent(model="other"))).changed is True
    assert (await s.get("agent", "a")).changed is None  # a Doc read back was written by no one here
    assert (await s.revert("agent", "a", 1)).changed is True
    await s.delete("agent", "a")
    assert (await s.put("agent", "a", agent())).changed is True  # a deleted document is written again
    docs = await s.put_many("agent", {"b": agent(), "a": agent(), "c": agent()})
    assert [(d.name, d.changed) for d in docs] == [("b", True), ("a", False), ("c", True)]
    assert docs[1] == await s.get("agent", "a")  # changed does not count in equality


async def test_a_keyed_retry_says_what_the_first_attempt_did(s: AsyncDocStore) -> None:
    assert (await s.put("agent", "a", agent(), idempotency_key="k1")).changed is True
    assert (await s.put("agent", "a", agent(), idempotency_key="k1")).changed is True  # a replay of k1
    await s.put("agent", "b", agent())
    assert (await s.put("agent", "b", agent(), idempotency_key="k2")).changed is False
    await s.put("agent", "b", agent(model="later"))
    replay = await s.put("agent", "b", agent(), idempotency_key="k2")
    assert replay.changed is False and replay.version == 1
