"""Failover with a multi-host DSN: the primary dies while writers run, the replica is
promoted, and the writers carry on against it (tests/servers.py: ReplicaPair).

The pair replicates synchronously (``synchronous_standby_names='*'``): a commit is
acknowledged only once the replica has it, so every acknowledged write must be on the
promoted replica. libpq tries the DSN's hosts in order and ``target_session_attrs=
read-write`` skips the replica until it is promoted; the pool's new connections then land
on it. In between, calls fail with DatabaseUnavailable and nothing else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from servers import ReplicaPair

from docstore import DatabaseUnavailable, DocStore, Registry

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

WRITERS = 3


@pytest.fixture
def pair() -> Iterator[ReplicaPair]:
    with ReplicaPair(sync=True) as servers:
        yield servers


def test_writes_resume_on_the_promoted_replica_and_none_acknowledged_is_lost(pair: ReplicaPair) -> None:
    assert pair.replica is not None
    dsn = (
        f"host=127.0.0.1,127.0.0.1 port={pair.primary.port},{pair.replica.port} "
        "user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2"
    )
    kinds = Registry()
    kinds.register("event", dict)
    store = DocStore.connect(
        dsn, kinds=kinds, schema="failover", min_size=WRITERS, max_size=WRITERS, timeout=5
    )
    store.init_schema()
    acked: list[tuple[float, float, str]] = []  # (started, acknowledged, name)
    failed: list[tuple[float, str, BaseException]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"w{w}-{i}"
            i += 1
            started = time.monotonic()
            try:
                store.put("event", name, {"writer": w, "i": i})
            except Exception as exc:  # every kind is recorded and checked below
                with lock:
                    failed.append((time.monotonic(), name, exc))
                time.sleep(0.02)
            else:
                with lock:
                    acked.append((started, time.monotonic(), name))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        pair.primary.stop("immediate")  # returns once the server is gone
        killed = time.monotonic()
        assert not pair.primary.is_running()
        pair.promote()
        promoted = time.monotonic()
        deadline = promoted + 30
        while time.monotonic() < deadline:
            with lock:
                after = sum(1 for t, _, _ in acked if t > promoted)
            if after >= 50:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        store.close()

    before = [name for _, t, name in acked if t < killed]
    # Writes started after the kill: the first of them to be acknowledged ends the gap.
    resumed = [t for started, t, _ in acked if started > killed]
    assert len(before) > 20, "the writers did not get going before the failover"
    assert len(resumed) >= 50, f"writes did not resume: {failed[-3:]}"
    # The only error in between is the documented one.
    assert all(isinstance(exc, DatabaseUnavailable) for _, _, exc in failed), [
        repr(exc) for _, _, exc in failed if not isinstance(exc, DatabaseUnavailable)
    ]
    # Every acknowledged write is on the new primary.
    with psycopg.connect(pair.replica.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        stored = {row[0] for row in conn.execute("SELECT name FROM failover.documents WHERE kind = 'event'")}
    missing = [name for _, _, name in acked if name not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:5]}"
    gap = min(resumed) - killed
    print(
        f"\nfailover: {len(before)} writes before, first write after {gap:.2f} s "
        f"(promotion took {promoted - killed:.2f} s), {len(failed)} failed calls, "
        f"{sum(1 for _, n, _ in failed if n in stored)} of them committed anyway"
    )
