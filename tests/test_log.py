# Generated from tests/test_log_async.py by .ci/async_to_sync.py: do not edit.
# Change tests/test_log_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""Log kinds (conversations): appends, reads of the last N, rewrites, clears, retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import PARTITIONS, count_rows, layout_of
from pydantic import BaseModel, TypeAdapter

from docstore import DocStore, DocumentInvalid, DocumentNotFound, KindMismatch, VersionConflict


class Msg(BaseModel):
    role: str
    content: str


class Meta(BaseModel):
    agent_name: str
    session_id: str
    title: str | None = None


def msgs(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


@pytest.fixture
def store(store_both_layouts: DocStore) -> DocStore:
    """Every test here runs on a plain and on a hash-partitioned versions table as well."""
    return store_both_layouts


def test_the_versions_table_has_the_layout_asked_for(store: DocStore, request: pytest.FixtureRequest) -> None:
    partitioned = request.node.callspec.params["store_both_layouts"] == "partitioned"
    assert layout_of(store) == (("p", PARTITIONS) if partitioned else ("r", 0))


@pytest.fixture
def s(store: DocStore) -> DocStore:
    store.register("conversation", Msg, mode="log", meta=Meta)
    store.register("note", Msg, mode="log")
    store.register("agent", dict)
    return store


META = {"agent_name": "weather", "session_id": "s1"}


def test_append_returns_the_new_version_and_items_read_back_in_order(s: DocStore) -> None:
    assert s.append("conversation", "weather/s1", msgs("a", "b"), meta=META) == 2
    assert s.append("conversation", "weather/s1", msgs("c")) == 3
    assert [m.content for m in s.read("conversation", "weather/s1")] == ["a", "b", "c"]
    assert all(isinstance(m, Msg) for m in s.read("conversation", "weather/s1"))


def test_entries_carry_each_items_version_and_write_time(s: DocStore) -> None:
    s.append("conversation", "weather/s1", msgs("a", "b"), meta=META)
    s.append("conversation", "weather/s1", msgs("c"))
    entries = (s.read("conversation", "weather/s1", written_at=True)).entries()
    assert [(e.version, e.item.content) for e in entries] == [(1, "a"), (2, "b"), (3, "c")]
    assert entries[0].written_at == entries[1].written_at <= entries[2].written_at


def test_read_returns_a_list_that_knows_each_items_version_and_asked_for_write_time(
    s: DocStore,
) -> None:
    s.append("conversation", "weather/s1", msgs("a", "b", "c"), meta=META)
    s.clear("conversation", "weather/s1")
    s.append("conversation", "weather/s1", msgs("d", "e"))
    items = s.read("conversation", "weather/s1")
    assert isinstance(items, list) and items == [
        Msg(role="user", content="d"),
        Msg(role="assistant", content="e"),
    ]
    assert items.versions == [4, 5] and items.schema_versions == [1, 1]
    with pytest.raises(ValueError, match="written_at=True"):
        items.written_at  # noqa: B018 - the property raises
    last = s.read("conversation", "weather/s1", last=1, written_at=True)
    assert [m.content for m in last] == ["e"] and last.versions == [5]
    (entry,) = last.entries()
    assert (entry.version, entry.item, entry.schema_version) == (5, last[0], 1)
    assert entry.written_at == last.written_at[0] == (s.get("conversation", "weather/s1")).updated_at
    empty = s.read("conversation", "weather/s1", after=5, written_at=True)
    assert empty == [] and empty.versions == [] and empty.entries() == []


def test_entries_is_deprecated_and_gives_what_read_with_write_times_gives(s: DocStore) -> None:
    s.append("conversation", "weather/s1", msgs("a", "b"), meta=META)
    with pytest.deprecated_call(match="read"):
        old = s.entries("conversation", "weather/s1", last=1)
    with pytest.deprecated_call(match="read"):
        via_handle = s.log("conversation").entries("weather/s1", last=1)
    new = (s.read("conversation", "weather/s1", last=1, written_at=True)).entries()
    assert old == via_handle == new and [e.version for e in new] == [2]


def test_the_head_holds_the_metadata_version_and_live_count(s: DocStore) -> None:
    s.append("conversation", "weather/s1", msgs("a", "b", "c"), meta=META)
    head = s.get("conversation", "weather/s1")
    assert head.data == Meta(agent_name="weather", session_id="s1")
    assert (head.version, head.count) == (3, 3)
    s.append("conversation", "weather/s1", [], meta={**META, "title": "rain"})
    head = s.get("conversation", "weather/s1")
    assert head.data.title == "rain" and head.version == 3


def test_a_new_log_needs_meta_when_its_meta_type_has_required_fields(s: DocStore) -> None:
    with pytest.raises(DocumentInvalid, match="needs meta="):
        s.append("conversation", "weather/s1", msgs("a"))
    assert count_rows(s, "versions", "conversation") == 0
    assert s.append("note", "n1", msgs("a")) == 1  # meta type not given: {} is fine
    assert (s.get("note", "n1")).data == {}


def test_read_last_n_returns_the_newest_live_items_oldest_first(s: DocStore) -> None:
    s.append("conversation", "c", msgs(*[str(i) for i in range(20)]), meta=META)
    assert [m.content for m in s.read("conversation", "c", last=3)] == ["17", "18", "19"]
    assert len(s.read("conversation", "c", last=50)) == 20
    assert s.read("conversation", "c", last=0) == []


def test_read_after_and_limit_page_through_the_items(s: DocStore) -> None:
    s.append("conversation", "c", msgs(*[str(i) for i in range(10)]), meta=META)
    assert [m.content for m in s.read("conversation", "c", after=4, limit=3)] == ["4", "5", "6"]
    with pytest.raises(ValueError, match="not both"):
        s.read("conversation", "c", last=2, limit=2)


def test_read_into_validates_the_stored_json_with_the_adapter_given(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a", "b", "c"), meta=META)
    as_dicts = TypeAdapter(dict[str, str])
    assert s.read("conversation", "c", into=as_dicts) == msgs("a", "b", "c")
    assert s.read("conversation", "c", last=2, into=as_dicts) == msgs("a", "b", "c")[1:]
    # An item of an older schema_version is upgraded first, then validated with into.
    s.register(
        "conversation",
        Msg,
        mode="log",
        meta=Meta,
        schema_version=2,
        upgraders={1: lambda d: {**d, "content": d["content"].upper()}},
    )
    s.append("conversation", "c", msgs("d"))
    assert s.read("conversation", "c", into=as_dicts) == [*msgs("A", "B", "C"), *msgs("d")]
    # An item into refuses is DocumentInvalid, named by version as the kind's own are
    # (version 1 upgraded, version 4 as stored).
    numbers = TypeAdapter(dict[str, int])
    for last, version in ((None, 1), (1, 4)):
        with pytest.raises(DocumentInvalid) as info:
            s.read("conversation", "c", last=last, into=numbers)
        assert info.value.version == version and "(stored data)" in str(info.value)


def test_reading_a_log_that_never_started_gives_no_items(s: DocStore) -> None:
    assert s.read("conversation", "nobody/none") == []
    with pytest.raises(DocumentNotFound):
        s.get("conversation", "nobody/none")


def test_append_with_expected_version_is_compare_and_swap(s: DocStore) -> None:
    assert s.append("conversation", "c", msgs("a"), meta=META, expected_version=0) == 1
    with pytest.raises(VersionConflict) as info:
        s.append("conversation", "c", msgs("b"), expected_version=0)
    assert info.value.actual == 1
    assert s.append("conversation", "c", msgs("b"), expected_version=1) == 2
    with pytest.raises(VersionConflict) as info:
        s.append("conversation", "c", msgs("x"), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    with pytest.raises(VersionConflict):
        s.append("conversation", "ghost", msgs("x"), meta=META, expected_version=4)
    assert [m.content for m in s.read("conversation", "c")] == ["a", "b"]


def test_a_batch_with_one_invalid_item_writes_nothing_and_names_the_item(s: DocStore) -> None:
    s.append("conversation", "c", msgs("first"), meta=META)
    batch: list[Any] = msgs(*[f"m{i}" for i in range(200)])
    batch[137] = {"role": "user"}  # no content
    with pytest.raises(DocumentInvalid) as info:
        s.append("conversation", "c", batch)
    assert "137.content: Field required" in str(info.value)
    assert (info.value.kind, info.value.name) == ("conversation", "c")
    assert count_rows(s, "versions", "conversation") == 1
    assert (s.get("conversation", "c")).version == 1


def test_read_validates_every_item_and_names_the_first_invalid_one_by_version(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a", "b", "c", "d"), meta=META)
    with s.pool.connection() as conn:
        conn.execute(
            f'UPDATE "{s.schema}".versions SET data = \'{{"role": "user"}}\''
            " WHERE kind = 'conversation' AND name = 'c' AND version IN (3, 4)"
        )

    def read(how: str) -> object:
        if how == "with times":
            return s.read("conversation", "c", written_at=True)
        return s.read("conversation", "c", last=3 if how == "last 3" else None)

    for how in ("all", "last 3", "with times"):
        with pytest.raises(DocumentInvalid) as info:
            read(how)
        assert (info.value.kind, info.value.name, info.value.version) == ("conversation", "c", 3)
        assert "stored data" in str(info.value)
    assert [m.content for m in s.read("conversation", "c", limit=2)] == ["a", "b"]


def test_rewrite_replaces_the_live_items_and_keeps_the_old_ones_by_version(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a", "b", "c"), meta=META)
    assert s.rewrite("conversation", "c", msgs("summary of a-c")) == 4
    assert [m.content for m in s.read("conversation", "c")] == ["summary of a-c"]
    assert (s.get("conversation", "c")).count == 1
    s.append("conversation", "c", msgs("d"))
    assert (s.read("conversation", "c")).versions == [4, 5]
    with s.pool.connection() as conn:
        cur = conn.execute(f'SELECT version, op FROM "{s.schema}".versions ORDER BY version')
        ops = cur.fetchall()
    assert ops == [(1, "append"), (2, "append"), (3, "append"), (4, "rewrite"), (5, "append")]


def test_rewrite_with_a_stale_expected_version_conflicts(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a", "b"), meta=META)
    with pytest.raises(VersionConflict):
        s.rewrite("conversation", "c", msgs("x"), expected_version=1)
    assert len(s.read("conversation", "c")) == 2


def test_clear_leaves_no_live_items_and_appends_continue_the_numbering(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a", "b"), meta=META)
    assert s.clear("conversation", "c") == 2
    assert s.read("conversation", "c") == []
    assert (s.get("conversation", "c")).count == 0
    assert s.append("conversation", "c", msgs("c")) == 3
    assert (s.read("conversation", "c")).versions == [3]
    assert count_rows(s, "versions", "conversation") == 3


def test_delete_of_a_log_hides_it_and_a_later_append_starts_it_afresh(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a", "b"), meta=META)
    s.delete("conversation", "c")
    with pytest.raises(DocumentNotFound):
        s.get("conversation", "c")
    assert s.read("conversation", "c") == []
    assert s.append("conversation", "c", msgs("new"), meta=META) == 3
    assert [m.content for m in s.read("conversation", "c")] == ["new"]


def test_list_finds_sessions_through_their_heads(s: DocStore) -> None:
    s.append("conversation", "weather/s1", msgs("a"), meta=META)
    s.append("conversation", "weather/s2", msgs("a"), meta={**META, "session_id": "s2"})
    s.append("conversation", "travel/s1", msgs("a"), meta={**META, "agent_name": "travel"})
    found = s.list("conversation", where={"agent_name": "weather"})
    assert [d.name for d in found] == ["weather/s1", "weather/s2"]
    assert found[0].count == 1


def test_log_operations_on_a_snapshot_kind_raise_kind_mismatch(s: DocStore) -> None:
    with pytest.raises(KindMismatch):
        s.append("agent", "x", [{}])
    with pytest.raises(KindMismatch):
        s.put("conversation", "x", {"role": "user", "content": "hi"})


def test_prune_removes_whole_conversations_older_than_a_cutoff(s: DocStore) -> None:
    for i in range(3):
        s.append("conversation", f"old{i}", msgs("a", "b"), meta=META)
    s.append("conversation", "fresh", msgs("a"), meta=META)
    with s.pool.connection() as conn:
        conn.execute(
            f"UPDATE \"{s.schema}\".documents SET updated_at = now() - interval '40 days' "
            "WHERE name LIKE 'old%%'"
        )
    assert s.prune_documents("conversation", older_than=timedelta(days=30), batch_size=2) == 3
    assert [d.name for d in s.list("conversation")] == ["fresh"]
    assert count_rows(s, "versions", "conversation") == 1


def test_prune_reports_its_progress_after_each_batch(s: DocStore) -> None:
    for i in range(5):
        s.append("conversation", f"c{i}", msgs("a"), meta=META)
    seen: list[int] = []
    assert s.prune_documents("conversation", keep_last=0, batch_size=2, progress=seen.append) == 5
    assert seen == [2, 4, 5]
    for i in range(4):
        s.put("agent", "a", {"n": i})
    seen.clear()
    assert s.prune_versions("agent", keep_last=1, batch_size=2, progress=seen.append) == 3
    assert seen == [2, 3]


def test_prune_keep_last_keeps_the_most_recently_written(s: DocStore) -> None:
    for i in range(5):
        s.append("conversation", f"c{i}", msgs("a"), meta=META)
    assert s.prune_documents("conversation", keep_last=2) == 3
    assert [d.name for d in s.list("conversation")] == ["c3", "c4"]


def test_prune_versions_bounds_a_snapshot_kinds_history_and_keeps_the_current(s: DocStore) -> None:
    for i in range(10):
        s.put("agent", "a", {"n": i})
    s.put("agent", "b", {"n": 0})
    assert s.prune_versions("agent", keep_last=3, batch_size=4) == 7
    assert [d.version for d in s.versions("agent", "a")] == [8, 9, 10]
    assert [d.version for d in s.versions("agent", "b")] == [1]
    assert (s.get("agent", "a")).data == {"n": 9}


def test_prune_versions_on_a_log_drops_only_items_no_longer_live(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a", "b", "c"), meta=META)
    s.rewrite("conversation", "c", msgs("summary"))
    assert s.prune_versions("conversation", keep_last=1) == 3
    assert [m.content for m in s.read("conversation", "c")] == ["summary"]


@pytest.mark.parametrize("meddle", ["clear", "delete"])
def test_expected_count_catches_a_clear_or_delete_that_expected_version_alone_misses(
    s: DocStore, meddle: str
) -> None:
    s.append("conversation", "c", msgs("a", "b"), meta=META)
    (s.clear if meddle == "clear" else s.delete)("conversation", "c")
    assert s.append("conversation", "c", msgs("x"), meta=META, expected_version=2) == 3
    s.append("conversation", "d", msgs("a", "b"), meta=META)
    (s.clear if meddle == "clear" else s.delete)("conversation", "d")
    with pytest.raises(VersionConflict, match="expected 2 live items at version 2, but it has 0"):
        s.append("conversation", "d", msgs("x"), meta=META, expected_version=2, expected_count=2)
    assert count_rows(s, "versions", "conversation", "d") == 2


def test_expected_count_that_matches_lets_the_append_through(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a", "b", "c"), meta=META)
    s.rewrite("conversation", "c", msgs("summary"))
    assert s.append("conversation", "c", msgs("d"), expected_version=4, expected_count=1) == 5
    with pytest.raises(VersionConflict, match="expected to be at version 4, but it is at version 5"):
        s.append("conversation", "c", msgs("e"), expected_version=4, expected_count=2)
    with pytest.raises(ValueError, match="expected_count goes with an expected_version"):
        s.append("conversation", "c", msgs("e"), expected_count=2)


def test_meta_update_sets_some_keys_and_keeps_the_others(s: DocStore) -> None:
    s.append("conversation", "c", msgs("a"), meta={**META, "title": "rain"})
    assert s.append("conversation", "c", msgs("b"), meta_update={"title": "sun"}) == 2
    head = s.get("conversation", "c")
    assert head.data == Meta(agent_name="weather", session_id="s1", title="sun")
    with pytest.raises(ValueError, match="not both"):
        s.append("conversation", "c", [], meta=META, meta_update={"title": "x"})
    with pytest.raises(DocumentInvalid, match="needs meta="):
        s.append("conversation", "new", msgs("a"), meta_update={"title": "x"})


def test_count_counts_live_heads_matching_the_filter(s: DocStore) -> None:
    s.append("conversation", "a", msgs("x"), meta=META)
    s.append("conversation", "b", msgs("x"), meta={**META, "agent_name": "other"})
    s.append("conversation", "c", msgs("x"), meta=META)
    s.delete("conversation", "c")
    assert s.count("conversation") == 2
    assert s.count("conversation", where={"agent_name": "weather"}) == 1
    assert s.count("note") == 0


def test_purge_removes_documents_with_every_version_for_good(s: DocStore) -> None:
    s.append("conversation", "a", msgs("x", "y"), meta=META)
    s.append("conversation", "b", msgs("z"), meta=META)
    s.append("conversation", "gone", msgs("z"), meta=META)
    s.delete("conversation", "gone")
    assert s.purge("conversation", ["a", "gone", "missing"]) == ["a"]
    assert count_rows(s, "versions", "conversation", "a") == 0
    assert count_rows(s, "documents", "conversation", "gone") == 0
    assert count_rows(s, "versions", "conversation", "b") == 1
    with pytest.raises(DocumentNotFound):
        s.get("conversation", "a")
    # The name starts afresh.
    assert s.append("conversation", "a", msgs("new"), meta=META) == 1
    assert s.purge("conversation", "b") == ["b"]
    assert s.purge("conversation", []) == []
