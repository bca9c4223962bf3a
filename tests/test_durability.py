# Generated from tests/test_durability_async.py by .ci/async_to_sync.py: do not edit.
# Change tests/test_durability_async.py and run `.venv/bin/python .ci/async_to_sync.py`.
"""durability="async": a kind's writes commit with synchronous_commit off, set inside
their own statement, and everything else stays as it was.

What a commit used is read where PostgreSQL reads it: a deferred constraint trigger on
``changes`` fires at commit, just before the commit record is written, and records
``current_setting('synchronous_commit')`` then.
"""

from __future__ import annotations

import pytest
from conftest import Factory, count_rows

from docstore import DocStore


@pytest.fixture
def store(docstore_factory: Factory) -> DocStore:
    """A fresh store of this module's shell."""
    return docstore_factory()


def _record_commits(store: DocStore) -> None:
    s = f'"{store.schema}"'
    with store.pool.connection() as conn:
        conn.execute(f"""
            CREATE TABLE {s}.commit_seen (kind text, name text, sync text);
            CREATE FUNCTION {s}.commit_seen() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO {s}.commit_seen
                VALUES (NEW.kind, NEW.name, current_setting('synchronous_commit'));
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER commit_seen AFTER INSERT ON {s}.changes
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {s}.commit_seen();
        """)


def _seen(store: DocStore) -> list[tuple[str, str, str]]:
    with store.pool.connection() as conn:
        cursor = conn.execute(f'SELECT kind, name, sync FROM "{store.schema}".commit_seen')
        rows = cursor.fetchall()
        conn.execute(f'TRUNCATE "{store.schema}".commit_seen')
    return [(str(kind), str(name), str(sync)) for kind, name, sync in rows]


def _server_default(store: DocStore) -> str:
    with store.pool.connection() as conn:
        row = (conn.execute("SELECT current_setting('synchronous_commit')")).fetchone()
    assert row is not None and row[0] != "off", "the test needs a server that commits durably"
    return str(row[0])


def test_writes_of_an_async_kind_commit_without_waiting_and_others_durably(
    store: DocStore,
) -> None:
    durable = _server_default(store)
    store.register("chat", dict, mode="log", durability="async")
    store.register("lazycfg", dict, durability="async")
    store.register("cfg", dict)
    _record_commits(store)
    store.append("chat", "c", [{"n": 1}])
    store.put("lazycfg", "a", {"n": 1})
    store.put("cfg", "a", {"n": 1})
    store.append("chat", "c", [{"n": 2}], expected_version=1)
    store.put("cfg", "a", {"n": 2}, expected_version=1)
    store.clear("chat", "c")
    store.delete("lazycfg", "a")
    assert _seen(store) == [
        ("chat", "c", "off"),
        ("lazycfg", "a", "off"),
        ("cfg", "a", durable),
        ("chat", "c", "off"),
        ("cfg", "a", durable),
        ("chat", "c", "off"),
        ("lazycfg", "a", "off"),
    ]
    # Nothing else changes: the versions, the change rows, the values.
    assert store.read("chat", "c") == []
    assert count_rows(store, "versions", "chat", "c") == 2
    assert count_rows(store, "changes", "chat", "c") == 3
    assert count_rows(store, "versions", "lazycfg", "a") == 2
    assert (store.get("cfg", "a")).version == 2


def test_a_transaction_block_commits_durably_whatever_kinds_it_writes(store: DocStore) -> None:
    durable = _server_default(store)
    store.register("chat", dict, mode="log", durability="async")
    store.register("cfg", dict)
    _record_commits(store)
    with store.transaction():
        store.append("chat", "c", [{"n": 1}])
        store.put("cfg", "a", {"n": 1})
    with store.transaction():
        store.append("chat", "c", [{"n": 2}])
    with store.transaction():
        store.append("chat", "c", [{"n": 3}])
    in_blocks = [("chat", "c", durable), ("cfg", "a", durable), ("chat", "c", durable)]
    assert _seen(store) == [*in_blocks, ("chat", "c", durable)]
    assert store.read("chat", "c") == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_durability_is_durable_or_async(store: DocStore) -> None:
    with pytest.raises(ValueError, match="kind 'chat': durability must be 'durable' or 'async'"):
        store.register("chat", dict, mode="log", durability="fast")  # type: ignore[call-overload]
    assert store.register("cfg", dict).durability == "durable"
