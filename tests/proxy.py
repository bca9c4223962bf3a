"""A TCP proxy on a loopback port, in-process, that can lose a reply.

``drop_replies(n)`` makes the next ``n`` replies from the server vanish: the server has
run (and, in autocommit, committed) the statement, the proxy throws its answer away and
closes the client's socket. The client cannot tell whether its write happened.
"""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType


class LossyProxy:
    """``with LossyProxy(port) as proxy:`` forwards 127.0.0.1:proxy.port to the server."""

    def __init__(self, server_port: int, server_host: str = "127.0.0.1") -> None:
        self.target = (server_host, server_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._drops = 0
        self._writes_only = True
        self.dropped = 0
        self._closing = False
        self._threads: list[threading.Thread] = []

    def drop_replies(self, count: int = 1, writes_only: bool = True) -> None:
        """Lose the next ``count`` replies the server sends (on any connection) to a
        statement. ``writes_only``: the first one lost is the reply to a statement holding
        INSERT or UPDATE (connect with ``prepare_threshold=None`` so that every statement
        travels as text); the ones after it, to any statement."""
        with self._lock:
            self._drops = count
            self._writes_only = writes_only

    def dsn(self, dbname: str, user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"

    def __enter__(self) -> LossyProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            thread = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            thread.start()

    def _take_drop(self) -> bool:
        with self._lock:
            if self._drops > 0:
                self._drops -= 1
                self.dropped += 1
                self._writes_only = False
                return True
            return False

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        # Only a reply to a statement is lost, never the start-up handshake of a new
        # connection: a statement starts with 'Q' (simple) or 'P'/'B' (extended protocol).
        in_statement = False
        try:
            while not self._closing:
                readable, _, _ = select.select([client, server], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is server:
                        # A reply to the client: drop it (the statement has run) or pass it on.
                        if in_statement and self._take_drop():
                            return
                        in_statement = False
                        client.sendall(data)
                    else:
                        in_statement = data[:1] in (b"Q", b"P", b"B") and (
                            not self._writes_only or b"INSERT" in data or b"UPDATE" in data
                        )
                        server.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()
