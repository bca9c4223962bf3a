"""docs/backups.md (issue 28, item 8): its shell blocks, run as written, move a store with
``pg_dump`` into a new database of another cluster, with ``pg_restore`` and with ``psql``,
and the store works there; the change feed after the documented clean-up, and without it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from servers import ThrowawayServer

from docstore import DocStore, DocStoreError
from docstore.agents import StorageManager
from docstore.cli import main

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
SCHEMA = "docstore"  # the pages' commands name the default schema


def _blocks() -> list[str]:
    blocks = BLOCK.findall((ROOT / "docs" / "backups.md").read_text(encoding="utf-8"))
    assert len(blocks) == 5, "dump, restore, empty the feed, status, plain dump and psql"
    return blocks


def _sh(block: str, cwd: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DOCSTORE_", "AURITE_", "PG"))}
    path = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '/usr/bin:/bin')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=cwd,
        env={**clean, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{block}\n{done.stderr}"
    return done.stdout


def _export(dsn: str, capfd: pytest.CaptureFixture[str]) -> str:
    capfd.readouterr()
    assert main(["--dsn", dsn, "--schema", SCHEMA, "export"]) == 0
    out, err = capfd.readouterr()
    assert out.count("\n") > 5, err
    return out


def _burn_transaction_ids(conn: psycopg.Connection[object], count: int) -> None:
    """Move the cluster's transaction counter on by ``count`` (a subtransaction that writes
    takes an id of its own), so that its ids are ahead of a young cluster's."""
    conn.execute(
        "DO $$ BEGIN CREATE TEMP TABLE burn (x int) ON COMMIT DROP; "
        f"FOR i IN 1..{count} LOOP BEGIN INSERT INTO burn VALUES (i); "
        "EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$"
    )


def _feed_delivers_a_new_write(store: DocStore, name: str) -> None:
    cursor = store.change_cursor()
    store.put("note", name, {})
    changes = list(store.changes(after=cursor, stop=lambda: True))
    assert [(c.kind, c.name, c.version) for c in changes] == [("note", name, 1)]


def test_pg_dump_restored_into_another_cluster_gives_a_working_store(
    docstore_dsn: str,
    docstore_factory: Callable[..., DocStore],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dump, restore, empty_feed, status, plain = _blocks()
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")  # the docs' examples use it too
        _burn_transaction_ids(conn, 1000)
    source = docstore_factory(SCHEMA)
    StorageManager(source).init_db()  # the agents layer's messages view, dumped with the rest
    source.register("note", dict)
    source.register("chat", dict, mode="log")
    for i in range(3):
        source.put("note", "a", {"i": i})
    source.put("note", "gone", {})
    source.delete("note", "gone")
    source.append("chat", "c", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    with source.pool.connection() as conn:
        conn.execute(f"UPDATE {SCHEMA}.changes SET written_at = now() - interval '2 days'")
    assert source.prune_changes(older_than=timedelta(days=1)) > 0
    exported = _export(docstore_dsn, capfd)

    with ThrowawayServer() as server, psycopg.connect(server.dsn, autocommit=True) as admin:
        admin.execute("CREATE DATABASE app")
        admin.execute("CREATE DATABASE app2")
        new_url = server.dsn.replace("dbname=postgres", "dbname=app")
        plain_url = server.dsn.replace("dbname=postgres", "dbname=app2")

        # pg_dump --format=custom, pg_restore, the feed emptied: a working store.
        _sh(dump, tmp_path, DOCSTORE_URL=docstore_dsn)
        _sh(restore, tmp_path, NEW_URL=new_url)
        _sh(empty_feed, tmp_path, NEW_URL=new_url)
        assert "DDL version" in _sh(status, tmp_path, NEW_URL=new_url)
        assert _export(new_url, capfd) == exported  # every document and version, byte for byte
        with DocStore.connect(new_url, schema=SCHEMA) as restored:
            restored.register("note", dict)
            restored.register("chat", dict, mode="log")
            assert restored.get("note", "a").data == {"i": 2}
            assert [d.name for d in restored.list("note")] == ["a"]
            assert restored.restore("note", "gone") == 3  # the tombstone came along
            assert restored.put("note", "a", {"i": 3}).version == 4
            assert restored.append("chat", "c", [{"role": "user", "content": "again"}]) == 3
            with restored.pool.connection() as conn:
                row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.messages").fetchone()
                assert row is not None and row[0] == 3
            _feed_delivers_a_new_write(restored, "after-restore")

        # A plain dump through psql: the same store; its feed, not emptied yet, is refused
        # (the old cluster's pruning mark is ahead of this young cluster) until it is.
        _sh(plain, tmp_path, DOCSTORE_URL=docstore_dsn, NEW_URL=plain_url)
        assert _export(plain_url, capfd) == exported
        with DocStore.connect(plain_url, schema=SCHEMA) as copied:
            copied.register("note", dict)
            with pytest.raises(DocStoreError) as refused:
                _feed_delivers_a_new_write(copied, "before-emptying")
            # ChangesPruned (a new feed starts behind the copied mark), or, where a new feed
            # starts at the mark, CursorAheadOfServer (the mark is past the server's ids).
            assert type(refused.value).__name__ in ("ChangesPruned", "CursorAheadOfServer")
            _sh(empty_feed, tmp_path, NEW_URL=plain_url)
            _feed_delivers_a_new_write(copied, "after-emptying")
