"""durability="async": a kind's writes commit with synchronous_commit off, set inside
their own statement, and everything else stays as it was.

What a commit used is read where PostgreSQL reads it: a deferred constraint trigger on
``changes`` fires at commit, just before the commit record is written, and records
``current_setting('synchronous_commit')`` then.
"""

from __future__ import annotations

import pytest
from conftest import AsyncFactory, acount_rows

from docstore import AsyncDocStore


@pytest.fixture
async def astore(adocstore_factory: AsyncFactory) -> AsyncDocStore:
    """A fresh store of this module's shell."""
    return await adocstore_factory()


async def _record_commits(store: AsyncDocStore) -> None:
    s = f'"{store.schema}"'
    async with store.pool.connection() as conn:
        await conn.execute(f"""
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


async def _seen(store: AsyncDocStore) -> list[tuple[str, str, str]]:
    async with store.pool.connection() as conn:
        cursor = await conn.execute(f'SELECT kind, name, sync FROM "{store.schema}".commit_seen')
        rows = await cursor.fetchall()
        await conn.execute(f'TRUNCATE "{store.schema}".commit_seen')
    return [(str(kind), str(name), str(sync)) for kind, name, sync in rows]


async def _server_default(store: AsyncDocStore) -> str:
    async with store.pool.connection() as conn:
        row = await (await conn.execute("SELECT current_setting('synchronous_commit')")).fetchone()
    assert row is not None and row[0] != "off", "the test needs a server that commits durably"
    return str(row[0])


async def test_writes_of_an_async_kind_commit_without_waiting_and_others_durably(
    astore: AsyncDocStore,
) -> None:
    durable = await _server_default(astore)
    astore.register("chat", dict, mode="log", durability="async")
    astore.register("lazycfg", dict, durability="async")
    astore.register("cfg", dict)
    await _record_commits(astore)
    await astore.append("chat", "c", [{"n": 1}])
    await astore.put("lazycfg", "a", {"n": 1})
    await astore.put("cfg", "a", {"n": 1})
    await astore.append("chat", "c", [{"n": 2}], expected_version=1)
    await astore.put("cfg", "a", {"n": 2}, expected_version=1)
    await astore.clear("chat", "c")
    await astore.delete("lazycfg", "a")
    assert await _seen(astore) == [
        ("chat", "c", "off"),
        ("lazycfg", "a", "off"),
        ("cfg", "a", durable),
        ("chat", "c", "off"),
        ("cfg", "a", durable),
        ("chat", "c", "off"),
        ("lazycfg", "a", "off"),
    ]
    # Nothing else changes: the versions, the change rows, the values.
    assert await astore.read("chat", "c") == []
    assert await acount_rows(astore, "versions", "chat", "c") == 2
    assert await acount_rows(astore, "changes", "chat", "c") == 3
    assert await acount_rows(astore, "versions", "lazycfg", "a") == 2
    assert (await astore.get("cfg", "a")).version == 2


async def test_a_transaction_block_commits_durably_whatever_kinds_it_writes(astore: AsyncDocStore) -> None:
    durable = await _server_default(astore)
    astore.register("chat", dict, mode="log", durability="async")
    astore.register("cfg", dict)
    await _record_commits(astore)
    async with astore.transaction():
        await astore.append("chat", "c", [{"n": 1}])
        await astore.put("cfg", "a", {"n": 1})
    async with astore.transaction():
        await astore.append("chat", "c", [{"n": 2}])
    async with astore.transaction():
        await astore.append("chat", "c", [{"n": 3}])
    in_blocks = [("chat", "c", durable), ("cfg", "a", durable), ("chat", "c", durable)]
    assert await _seen(astore) == [*in_blocks, ("chat", "c", durable)]
    assert await astore.read("chat", "c") == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_durability_is_durable_or_async(astore: AsyncDocStore) -> None:
    with pytest.raises(ValueError, match="kind 'chat': durability must be 'durable' or 'async'"):
        astore.register("chat", dict, mode="log", durability="fast")  # type: ignore[call-overload]
    assert astore.register("cfg", dict).durability == "durable"
