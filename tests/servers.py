"""Throwaway PostgreSQL servers for tests that must stop, restart or replicate a server.

The machine's own server (the one the suite connects to) serves other clients too, so no
test may stop or reconfigure it. A test that needs a server to die starts one of these: an
``initdb`` in a temporary directory, run as the ``postgres`` OS user (PostgreSQL refuses
root), on a free loopback port, and stopped and deleted by the test itself.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

BINDIR_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                     "/usr/lib/postgresql/17/bin")


def pg_bindir() -> Path:
    """The directory of PostgreSQL's server binaries, or a failure saying what to install."""
    for candidate in BINDIR_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
                       "apt-get install postgresql")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a server binary as the postgres OS user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError("no 'postgres' OS user to run a throwaway server as: "
                               "apt-get install postgresql creates it") from exc
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, check=False,
                          timeout=120, **kwargs)  # type: ignore[call-overload]


class ThrowawayServer:
    """A PostgreSQL cluster of the test's own, on 127.0.0.1 and a port of its own.

    ``with ThrowawayServer() as server:`` initialises and starts it; leaving the block stops
    it and deletes its files. ``stop()`` and ``start()`` may be called in between.
    """

    def __init__(self, *, settings: dict[str, str] | None = None,
                 data_dir: Path | None = None, port: int | None = None) -> None:
        self.bindir = pg_bindir()
        self.port = port or free_port()
        self._owns_tmp = data_dir is None
        self.tmp = Path(tempfile.mkdtemp(prefix="docstore-pg-")) if data_dir is None \
            else data_dir.parent
        os.chmod(self.tmp, 0o777)
        self.data_dir = data_dir or self.tmp / "data"
        self.log_file = self.tmp / f"server-{self.port}.log"
        self.settings = {"fsync": "off", "synchronous_commit": "off",
                         "full_page_writes": "off", "max_connections": "50",
                         **(settings or {})}

    @property
    def dsn(self) -> str:
        """A DSN for the postgres superuser on the server's own database ``postgres``."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def initdb(self) -> None:
        """Create the cluster's files (trust auth for local and loopback connections)."""
        done = _as_postgres([str(self.bindir / "initdb"), "-D", str(self.data_dir),
                             "-A", "trust", "-U", "postgres", "--no-sync"])
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")

    def _options(self) -> str:
        opts = [f"-p {self.port}", f"-k {self.tmp}", "-c listen_addresses=127.0.0.1"]
        opts += [f"-c {key}={value}" for key, value in self.settings.items()]
        return " ".join(opts)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        done = _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir),
                             "-l", str(self.log_file), "-w", "-t", "60",
                             "-o", self._options(), "start"])
        if done.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{log[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``, or ``immediate`` for a crash-like stop)."""
        _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode,
                      "-w", "stop"])

    def is_running(self) -> bool:
        """Whether pg_ctl finds the server running."""
        done = _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "status"])
        return done.returncode == 0

    def __enter__(self) -> ThrowawayServer:
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server if it runs and delete its files."""
        if self.is_running():
            self.stop("immediate")
        if self._owns_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
