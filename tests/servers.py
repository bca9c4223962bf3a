"""Throwaway PostgreSQL servers for tests that must stop, restart or replicate a server.

The machine's own server (the one the suite connects to) serves other clients too, so no
test may stop or reconfigure it. A test that needs a server to die starts one of these: an
``initdb`` in a temporary directory, run as the ``postgres`` OS user (PostgreSQL refuses
root), on a free loopback port, and stopped and deleted by the test itself.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

BINDIR_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def pg_bindir() -> Path:
    """The directory of PostgreSQL's server binaries, or a failure saying what to install."""
    for candidate in BINDIR_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError(
        "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a server binary as the postgres OS user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError(
                "no 'postgres' OS user to run a throwaway server as: apt-get install postgresql creates it"
            ) from exc
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120, **kwargs)


class ThrowawayServer:
    """A PostgreSQL cluster of the test's own, on 127.0.0.1 and a port of its own.

    ``with ThrowawayServer() as server:`` initialises and starts it; leaving the block stops
    it and deletes its files. ``stop()`` and ``start()`` may be called in between.
    """

    def __init__(
        self, *, settings: dict[str, str] | None = None, data_dir: Path | None = None, port: int | None = None
    ) -> None:
        self.bindir = pg_bindir()
        self.port = port or free_port()
        self._owns_tmp = data_dir is None
        self.tmp = Path(tempfile.mkdtemp(prefix="docstore-pg-")) if data_dir is None else data_dir.parent
        os.chmod(self.tmp, 0o777)
        self.data_dir = data_dir or self.tmp / "data"
        self.log_file = self.tmp / f"server-{self.port}.log"
        self.settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            **(settings or {}),
        }

    @property
    def dsn(self) -> str:
        """A DSN for the postgres superuser on the server's own database ``postgres``."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def initdb(self) -> None:
        """Create the cluster's files (trust auth for local and loopback connections)."""
        done = _as_postgres(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ]
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")

    def _options(self) -> str:
        opts = [f"-p {self.port}", f"-k {self.tmp}", "-c listen_addresses=127.0.0.1"]
        opts += [f"-c {key}={value}" for key, value in self.settings.items()]
        return " ".join(opts)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        done = _as_postgres(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                self._options(),
                "start",
            ]
        )
        if done.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{log[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``, or ``immediate`` for a crash-like stop)."""
        _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"])

    def is_running(self) -> bool:
        """Whether pg_ctl finds the server running."""
        done = _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "status"])
        return done.returncode == 0

    def __enter__(self) -> ThrowawayServer:
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server if it runs and delete its files."""
        if self.is_running():
            self.stop("immediate")
        if self._owns_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


class ReplicaPair:
    """A throwaway primary and a streaming replica of it (``pg_basebackup -R``).

    ``with ReplicaPair() as pair:`` starts both; ``pair.primary`` and ``pair.replica`` are
    ThrowawayServers. The replica is a hot standby that replays the primary's WAL as it
    streams in; ``sync=True`` makes the primary wait for the replica to flush each commit
    (synchronous replication), so a promoted replica holds every acknowledged write.
    """

    def __init__(self, *, sync: bool = False, settings: dict[str, str] | None = None) -> None:
        settings = {
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "wal_keep_size": "256MB",
            **(settings or {}),
        }
        if sync:
            settings.update({"synchronous_standby_names": "*", "synchronous_commit": "on"})
        self.primary = ThrowawayServer(settings=settings)
        self.replica: ThrowawayServer | None = None
        self._settings = settings

    def __enter__(self) -> ReplicaPair:
        try:
            self.primary.__enter__()
            self.replica = self.standby()
        except BaseException:
            self.close()
            raise
        return self

    def standby(self) -> ThrowawayServer:
        """A new hot standby of the primary (``pg_basebackup -R``), started; the caller
        closes it (``replica`` is the pair's own, closed with the pair)."""
        replica_dir = Path(tempfile.mkdtemp(prefix="docstore-pg-replica-"))
        os.chmod(replica_dir, 0o777)
        data = replica_dir / "data"
        done = _as_postgres(
            [
                str(self.primary.bindir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                "postgres",
                "-D",
                str(data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ]
        )
        if done.returncode != 0:
            shutil.rmtree(replica_dir, ignore_errors=True)
            raise RuntimeError(f"pg_basebackup failed: {done.stderr.strip()}")
        # A replica does not wait for itself: only the primary names synchronous standbys.
        settings = {**self._settings, "synchronous_standby_names": ""}
        server = ThrowawayServer(settings=settings, data_dir=data)
        server._owns_tmp = True
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop both servers and delete their files."""
        if self.replica is not None:
            self.replica.close()
        self.primary.close()

    def promote(self) -> None:
        """Promote the replica to a primary (pg_ctl promote, waiting until it accepts writes)."""
        assert self.replica is not None
        done = _as_postgres(
            [
                str(self.replica.bindir / "pg_ctl"),
                "-D",
                str(self.replica.data_dir),
                "-w",
                "-t",
                "60",
                "promote",
            ]
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl promote failed: {done.stderr.strip()}")


def pgbouncer_binary() -> str:
    """The pgbouncer executable, or a failure saying what to install."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        raise RuntimeError("PgBouncer is not installed: apt-get install pgbouncer (.ci/run installs it)")
    return found


class PgBouncer:
    """A PgBouncer of the test's own in front of a PostgreSQL server, on a port of its own.

    Runs as the ``postgres`` OS user (PgBouncer refuses root) with trust auth, forwarding
    every database name to the server at ``server_host:server_port`` as user postgres.
    ``pool_mode`` is ``transaction`` by default: a server connection is lent per
    transaction, so session state (prepared statements, SET, advisory session locks)
    does not survive between transactions.
    """

    def __init__(
        self,
        server_port: int,
        *,
        server_host: str = "127.0.0.1",
        pool_mode: str = "transaction",
        pool_size: int = 10,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.binary = pgbouncer_binary()
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="docstore-pgbouncer-"))
        os.chmod(self.tmp, 0o777)
        self.ini = self.tmp / "pgbouncer.ini"
        self.log_file = self.tmp / "pgbouncer.log"
        self.pid_file = self.tmp / "pgbouncer.pid"
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": str(self.tmp),
            "auth_type": "any",
            "pool_mode": pool_mode,
            "default_pool_size": str(pool_size),
            "max_client_conn": "200",
            "logfile": str(self.log_file),
            "pidfile": str(self.pid_file),
            "admin_users": "postgres",
            "server_reset_query_always": "0",
            **(extra or {}),
        }
        lines = [
            "[databases]",
            f"* = host={server_host} port={server_port} user=postgres",
            "",
            "[pgbouncer]",
            *[f"{key} = {value}" for key, value in settings.items()],
        ]
        self.ini.write_text("\n".join(lines) + "\n")
        os.chmod(self.ini, 0o644)
        self._process: subprocess.Popen[bytes] | None = None

    def dsn(self, dbname: str) -> str:
        """A DSN for ``dbname`` through this PgBouncer."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def __enter__(self) -> PgBouncer:
        args = [self.binary, str(self.ini)]
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--", *args]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.log_file.read_text() if self.log_file.exists() else ""
                raise RuntimeError(f"pgbouncer exited at start: {log[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("pgbouncer did not listen within 15 s")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop PgBouncer (the process this object started) and delete its files."""
        if self._process is not None and self._process.poll() is None:
            # Signal pgbouncer itself (its pidfile): runuser, told to terminate, would wait
            # 2 s before killing its child.
            signalled = False
            if self.pid_file.exists():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(self.pid_file.read_text().strip()), signal.SIGTERM)
                    signalled = True
            if not signalled:
                self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)
