"""Races: many writers on one document, one conversation, one schema, overlapping batches.

Threads share one store (one pool); processes each open their own store, so the only
thing they share is the server, as separate application instances would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import count_rows
from psycopg import sql
from pydantic import BaseModel

from docstore import DocStore, VersionConflict, _sql


class Counter(BaseModel):
    n: int
    by: str = ""


class Message(BaseModel):
    role: str
    content: str


def _versions(store: DocStore, kind: str, name: str) -> list[int]:
    with store.pool.connection() as conn:
        rows = conn.execute(
            sql.SQL("SELECT version FROM {}.versions WHERE kind = %s AND name = %s ORDER BY version").format(
                sql.Identifier(store.schema)
            ),
            [kind, name],
        ).fetchall()
    return [r[0] for r in rows]


def _cas_increment(store: DocStore, name: str, tries: int, who: str) -> tuple[int, int]:
    """Read-modify-write with expected_version ``tries`` times; (successes, conflicts)."""
    ok = conflicts = 0
    for _ in range(tries):
        doc = store.get("counter", name)
        try:
            store.put("counter", name, Counter(n=doc.data.n + 1, by=who), expected_version=doc.version)
            ok += 1
        except VersionConflict as exc:
            assert exc.expected == doc.version and exc.actual > doc.version
            conflicts += 1
    return ok, conflicts


def test_cas_from_8_threads_loses_no_increment_and_versions_stay_contiguous(docstore_store: DocStore) -> None:
    store = docstore_store
    store.register("counter", Counter)
    store.put("counter", "c", Counter(n=0), expected_version=0)
    barrier = threading.Barrier(8)

    def worker(i: int) -> tuple[int, int]:
        barrier.wait()
        return _cas_increment(store, "c", 60, f"t{i}")

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(worker, range(8)))
    successes = sum(r[0] for r in results)
    assert sum(r[0] + r[1] for r in results) == 8 * 60
    assert sum(r[1] for r in results) > 0, "the race never happened"
    final = store.get("counter", "c")
    # Every successful CAS is exactly one increment and one version: nothing lost.
    assert final.data.n == successes
    assert final.version == successes + 1
    assert _versions(store, "counter", "c") == list(range(1, successes + 2))


_CAS_CHILD = textwrap.dedent("""
    import json, sys
    from pydantic import BaseModel
    from docstore import DocStore, VersionConflict

    class Counter(BaseModel):
        n: int
        by: str = ""

    dsn, schema, who, tries = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ok = conflicts = 0
    with DocStore.connect(dsn, schema=schema, max_size=2) as store:
        store.register("counter", Counter)
        print("ready", flush=True)
        sys.stdin.readline()  # start line: every process begins together
        for _ in range(tries):
            doc = store.get("counter", "c")
            try:
                store.put("counter", "c", Counter(n=doc.data.n + 1, by=who),
                          expected_version=doc.version)
                ok += 1
            except VersionConflict:
                conflicts += 1
    print(json.dumps([ok, conflicts]), flush=True)
""")


def _run_together(script: str, argvs: list[list[str]], timeout: float = 60) -> list[str]:
    """Start one process per argv, wait until each says "ready", release them at once,
    and return each one's last output line. Fails (never hangs) past ``timeout``."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdin is not None
            line = p.stdout.readline()
            assert line.strip() == "ready", (line, p.stderr.read() if p.stderr else "")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err
            outs.append(out.strip().splitlines()[-1])
        return outs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.slow
@pytest.mark.servers
def test_cas_from_4_processes_loses_no_increment(docstore_store: DocStore, docstore_dsn: str) -> None:
    store = docstore_store
    store.register("counter", Counter)
    store.put("counter", "c", Counter(n=0), expected_version=0)
    outs = _run_together(_CAS_CHILD, [[docstore_dsn, store.schema, f"p{i}", "50"] for i in range(4)])
    results = [json.loads(o) for o in outs]
    successes = sum(ok for ok, _ in results)
    assert sum(ok + c for ok, c in results) == 200
    final = store.get("counter", "c")
    assert final.data.n == successes
    assert final.version == successes + 1
    assert _versions(store, "counter", "c") == list(range(1, successes + 2))


def test_8_writers_appending_to_one_conversation_get_contiguous_unique_versions(
    docstore_store: DocStore,
) -> None:
    store = docstore_store
    store.register("chat", Message, mode="log")
    barrier = threading.Barrier(8)

    def writer(w: int) -> list[int]:
        barrier.wait()
        got = []
        for i in range(40):
            # Batches of 1 and 2 items interleave: versions must still be contiguous.
            items = [Message(role="user", content=f"{w}:{i}:{j}") for j in range(1 + i % 2)]
            got.append(store.append("chat", "s1", items))
        return got

    with ThreadPoolExecutor(8) as ex:
        returned = list(ex.map(writer, range(8)))
    expected = {f"{w}:{i}:{j}" for w in range(8) for i in range(40) for j in range(1 + i % 2)}
    entries = store.read("chat", "s1", written_at=True).entries()
    contents = [e.item.content for e in entries]
    assert len(contents) == len(expected) == len(set(contents))
    assert set(contents) == expected
    assert [e.version for e in entries] == list(range(1, len(expected) + 1))
    # Each writer's own messages stay in the order it wrote them, batch items adjacent.
    for w in range(8):
        mine = [c for c in contents if c.startswith(f"{w}:")]
        assert mine == sorted(mine, key=lambda c: tuple(int(x) for x in c.split(":")[1:]))
    # Each append returned the version of its last item, and no two returned the same.
    version_of = {e.item.content: e.version for e in entries}
    for w in range(8):
        assert returned[w] == [version_of[f"{w}:{i}:{i % 2}"] for i in range(40)]
    flat = [v for vs in returned for v in vs]
    assert len(flat) == len(set(flat))
    assert store.get("chat", "s1").version == len(expected)


_INIT_CHILD = textwrap.dedent("""
    import sys
    from docstore import DocStore

    dsn, schema = sys.argv[1], sys.argv[2]
    with DocStore.connect(dsn, schema=schema, min_size=1, max_size=1) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        print(store.init_schema(), flush=True)
""")


@pytest.mark.slow
@pytest.mark.servers
def test_init_schema_from_4_processes_at_once_on_an_empty_schema_succeeds_once(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str
) -> None:
    store = docstore_factory(init=False)  # dropped after the test; not created yet
    with store.pool.connection() as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", [store.schema]
        ).fetchone() == (0,)
    outs = _run_together(_INIT_CHILD, [[docstore_dsn, store.schema] for _ in range(4)])
    assert outs == [str(_sql.release_ddl_version())] * 4
    with store.pool.connection() as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [store.schema]
        ).fetchall()
        meta = conn.execute(
            sql.SQL("SELECT version FROM {}.documents WHERE kind = '_docstore'").format(
                sql.Identifier(store.schema)
            )
        ).fetchall()
    assert tables == [("changes",), ("documents",), ("versions",)]
    assert meta == [(1,)]
    # And it is usable, and a fifth run is a no-op.
    store.register("counter", Counter)
    store.put("counter", "c", {"n": 1})
    assert store.init_schema() == _sql.release_ddl_version()
    assert store.get("counter", "c").data.n == 1


def test_overlapping_put_many_batches_from_two_writers_neither_deadlock_nor_lose_writes(
    docstore_store: DocStore,
) -> None:
    store = docstore_store
    store.register("counter", Counter)
    names = [f"doc-{i:03d}" for i in range(60)]
    barrier = threading.Barrier(2)
    rounds = 25

    def writer(w: int) -> int:
        barrier.wait()
        for r in range(rounds):
            # Opposite input orders and overlapping halves: the classic deadlock shape.
            chosen = names[:45] if w == 0 else names[15:]
            if w == 1:
                chosen = list(reversed(chosen))
            store.put_many("counter", {n: Counter(n=r, by=f"w{w}") for n in chosen})
        return rounds

    with ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(writer, w) for w in range(2)]
        done = [f.result(timeout=60) for f in futures]  # a hang fails here, not forever
    assert done == [rounds, rounds]
    docs = store.get_many("counter", names)
    assert set(docs) == set(names)
    for name, doc in docs.items():
        writers = (name < "doc-045") + (name >= "doc-015")
        # Each writer changes the value every round (n or by differs), so every put_many
        # wrote a version, and the head is the last version written.
        assert doc.version == count_rows(store, "versions", "counter", name)
        assert rounds <= doc.version <= writers * rounds
        assert doc.data.n == rounds - 1


def test_overlapping_put_many_and_single_puts_in_random_order_all_land(docstore_store: DocStore) -> None:
    store = docstore_store
    store.register("counter", Counter)
    names = [f"k{uuid.uuid4().hex[:6]}" for _ in range(30)]

    def batch_writer(seed: int) -> None:
        import random

        rng = random.Random(seed)
        for r in range(20):
            chosen = rng.sample(names, 20)
            store.put_many("counter", {n: {"n": r, "by": f"b{seed}"} for n in chosen})

    def single_writer(seed: int) -> None:
        for r in range(20):
            for n in names[seed::4]:
                store.put("counter", n, {"n": 1000 + r, "by": f"s{seed}"})

    with ThreadPoolExecutor(4) as ex:
        futs = [
            ex.submit(batch_writer, 1),
            ex.submit(batch_writer, 2),
            ex.submit(single_writer, 0),
            ex.submit(single_writer, 1),
        ]
        for f in futs:
            f.result(timeout=60)
    for n in names:
        assert _versions(store, "counter", n) == list(range(1, store.get("counter", n).version + 1))
