"""StorageManager under a lost reply and under two managers saving one session at once."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import agent_fixtures
import pytest
from agent_fixtures import count_rows
from proxy import LossyProxy
from psycopg.conninfo import conninfo_to_dict

from docstore import DocStore
from docstore.agents import StorageManager

db = agent_fixtures.db


def turns(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"}
        for i in range(start, start + n)
    ]


@pytest.fixture
def lossy(db: DocStore, docstore_dsn: str) -> Iterator[tuple[LossyProxy, StorageManager]]:
    info = conninfo_to_dict(docstore_dsn)
    with LossyProxy(int(info.get("port") or 5432), str(info.get("host") or "127.0.0.1")) as proxy:
        store = DocStore.connect(
            proxy.dsn(str(info["dbname"]), str(info.get("user") or "postgres")),
            schema=db.schema,
            min_size=1,
            max_size=2,
            timeout=5,
            prepare_threshold=None,
        )
        with StorageManager(store, owns_store=True) as manager:
            manager.load_history("a", "warm")
            yield proxy, manager


def test_append_history_after_a_lost_reply_stores_the_messages_once(
    lossy: tuple[LossyProxy, StorageManager], db: DocStore
) -> None:
    proxy, manager = lossy
    assert manager.append_history("a", "s", turns(2)) == 2
    proxy.drop_replies(1)
    assert manager.append_history("a", "s", turns(3, 2)) == 3
    assert proxy.dropped == 1
    assert [m["content"] for m in manager.load_history("a", "s", None)] == [f"message {i}" for i in range(5)]
    assert count_rows(db, "versions", "conversation") == 5


@pytest.mark.parametrize("known", [True, False])
def test_save_full_history_after_a_lost_reply_stores_the_messages_once(
    lossy: tuple[LossyProxy, StorageManager], db: DocStore, known: bool
) -> None:
    proxy, manager = lossy
    conversation = turns(4)
    assert manager.save_full_history("a", "s", conversation) == 4
    if not known:  # a fresh manager: the general path, not the one that remembers
        manager = StorageManager(DocStore(manager.store.pool, schema=db.schema))
    proxy.drop_replies(1)
    assert manager.save_full_history("a", "s", conversation + turns(2, 4)) == 2
    assert proxy.dropped == 1
    assert len(manager.load_history("a", "s", None)) == 6
    assert count_rows(db, "versions", "conversation") == 6


def test_a_lagging_shorter_save_leaves_the_live_conversation_alone(db: DocStore) -> None:
    first = StorageManager(DocStore(db.pool, schema=db.schema))
    lagging = StorageManager(DocStore(db.pool, schema=db.schema))
    conversation = turns(10)
    assert lagging.save_full_history("a", "s", conversation[:6]) == 6
    assert first.save_full_history("a", "s", conversation) == 4
    # The lagging manager saves what it had: a prefix of what is stored. Nothing is lost.
    assert lagging.save_full_history("a", "s", conversation[:8]) == 0
    assert lagging.save_full_history("a", "s", conversation[:6]) == 0
    assert [m["content"] for m in first.load_history("a", "s", None)] == [m["content"] for m in conversation]
    # A conversation that differs from the stored one still replaces it.
    other = conversation[:3] + turns(1, 50)
    assert lagging.save_full_history("a", "s", other) == 4
    assert [m["content"] for m in first.load_history("a", "s", None)] == [m["content"] for m in other]


def test_two_managers_saving_one_session_at_once_never_conflict_or_truncate(db: DocStore) -> None:
    conversation = turns(120)
    errors: list[BaseException] = []
    rng = random.Random(13)
    plans = [[rng.randint(1, len(conversation)) for _ in range(60)] for _ in range(2)]

    def worker(lengths: list[int]) -> None:
        manager = StorageManager(DocStore(db.pool, schema=db.schema))
        try:
            for n in sorted(lengths):  # each host's view grows, at its own pace
                manager.save_full_history("a", "s", conversation[:n])
                stored = manager.load_history("a", "s", None)
                assert len(stored) >= n, f"saved {n}, then found {len(stored)}"
                assert stored == conversation[: len(stored)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    longest = max(max(p) for p in plans)
    manager = StorageManager(DocStore(db.pool, schema=db.schema))
    assert manager.load_history("a", "s", None) == conversation[:longest]


def test_append_history_to_a_log_written_by_other_code_after_lost_replies_stores_once(
    lossy: tuple[LossyProxy, StorageManager], db: DocStore
) -> None:
    proxy, manager = lossy
    # Written by other code (a session is named by its id): no hash chain in the head, so
    # the manager keys its append.
    db.append("conversation", "s", turns(2), meta={"agent_name": "a", "session_id": "s"})
    proxy.drop_replies(2)  # the append's reply, then docstore's own retry's
    assert manager.append_history("a", "s", turns(3, 2)) == 3
    assert proxy.dropped == 2
    assert len(manager.load_history("a", "s", None)) == 5
    assert count_rows(db, "versions", "conversation") == 5
