"""The change feed behind PgBouncer in transaction mode: writers go through it (NOTIFY
passes), the feed listens on a direct connection (``listen_dsn``), since LISTEN does not
survive transaction pooling."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from servers import free_port
from test_changes import Consumer, _keys, _wait_listening

from docstore import DocStore

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers


@pytest.fixture
def bouncer_dsn(docstore_dsn: str) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of the test database, run as postgres."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        pytest.fail("pgbouncer is not installed: apt-get install pgbouncer", pytrace=False)
    target = conninfo_to_dict(docstore_dsn)
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="docstore-bouncer-"))
    os.chmod(tmp, 0o777)
    (tmp / "users.txt").write_text('"postgres" ""\n')
    (tmp / "pgbouncer.ini").write_text(f"""
[databases]
* = host={target.get("host", "127.0.0.1")} port={target.get("port", 5432)}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp / "users.txt"}
pool_mode = transaction
default_pool_size = 4
logfile = {tmp / "pgbouncer.log"}
pidfile = {tmp / "pgbouncer.pid"}
""")
    for f in tmp.iterdir():
        os.chmod(f, 0o666)
    args = [binary, str(tmp / "pgbouncer.ini")]
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    dsn = make_conninfo(docstore_dsn, host="127.0.0.1", port=str(port))
    # Leaving the with closes the pipe (and waits for the process, stopped by then).
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    psycopg.connect(dsn, connect_timeout=2).close()
                    break
                except psycopg.OperationalError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        log = tmp / "pgbouncer.log"
                        raise RuntimeError(
                            "pgbouncer did not start: " + (log.read_text()[-2000:] if log.exists() else "")
                        ) from None
                    time.sleep(0.1)
            yield dsn
        finally:
            # SIGTERM to pgbouncer itself (runuser would wait for it): immediate shutdown.
            pidfile = tmp / "pgbouncer.pid"
            if pidfile.exists():
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


def test_writes_through_pgbouncer_reach_a_feed_listening_on_a_direct_connection(
    docstore_factory: Callable[..., DocStore], docstore_dsn: str, bouncer_dsn: str
) -> None:
    schema = docstore_factory().schema
    with DocStore.connect(bouncer_dsn, schema=schema, prepare_threshold=None) as store:
        store.register("cfg", dict)
        store.register("stop", dict)
        consumer = Consumer(store, listen_dsn=docstore_dsn, poll_interval=30)
        _wait_listening(store)
        with store.transaction():
            store.put("cfg", "a", {})
            store.put("cfg", "b", {})
        store.put("cfg", "a", {"v": 2})
        started = time.monotonic()
        got = consumer.stop(store)
        # Woken by NOTIFY through the bouncer, not by the 30 s poll interval.
        assert time.monotonic() - started < 5
        assert _keys(got) == [("cfg", "a", 1, "put"), ("cfg", "b", 1, "put"), ("cfg", "a", 2, "put")]
