"""Fault injectors (Jepsen's nemeses): a link that can be cut, killed connections, a server
killed with -9, replay paused on a standby, a transaction held open in another database.
The lost-reply proxy is tests/proxy.py's LossyProxy."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
import time
from types import TracebackType
from typing import Any

import psycopg
from servers import ThrowawayServer


class Link:
    """A TCP forwarder on a loopback port of its own. ``cut()`` breaks every connection
    through it and refuses new ones (the listener is closed, so libpq moves on to the
    next host of a multi-host DSN); ``heal()`` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._closing = False
        self.port = 0
        self.heal()

    def heal(self) -> None:
        with self._lock:
            if self._listener is not None or self._closing:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = int(listener.getsockname()[1])
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave
            # the socket listening until that accept returned.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for client, server in pairs:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self._closing = True
        self.cut()

    def __enter__(self) -> Link:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([client, server], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (server if sock is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            client.close()
            server.close()


def kill_connections(admin_dsn: str, pattern: str, spare: str = "") -> int:
    """Terminate every backend whose application_name is LIKE ``pattern`` (but
    ``spare``); how many."""
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE %s AND application_name <> %s AND pid <> pg_backend_pid()",
            [pattern, spare],
        ).fetchall()
    return len(rows)


def crash_and_restart(server: ThrowawayServer) -> float:
    """Kill the postmaster with SIGKILL (no shutdown at all), then start the server again
    (crash recovery); returns the seconds it was gone."""
    started = time.monotonic()
    pid = int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        # Its backends notice the postmaster's death and exit; until they have, a new
        # postmaster refuses to start on the shared memory they still hold.
        try:
            server.start()
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return time.monotonic() - started


def set_replay(standby_dsn: str, paused: bool) -> None:
    """Pause or resume WAL replay on a standby (and wait until a pause has taken)."""
    with psycopg.connect(standby_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")
        deadline = time.monotonic() + 10
        while paused and time.monotonic() < deadline:
            row = conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
            if row is not None and row[0] == "paused":
                return
            time.sleep(0.01)


class XidHolder:
    """A transaction that took a transaction id and stays open (in another database of
    the cluster: an idle-in-transaction session of another application)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None

    def hold(self) -> None:
        if self._conn is not None:
            return
        self._conn = psycopg.connect(self._dsn, connect_timeout=5)
        self._conn.execute("SELECT pg_current_xact_id()")

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            conn.close()
