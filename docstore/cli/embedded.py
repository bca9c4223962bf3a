"""An embedded PostgreSQL for a machine that has none, from the ``pgserver`` package.

``pip install 'docstore[embedded]'`` brings pgserver, a wheel with PostgreSQL's binaries.
:func:`start` starts (or reuses) a server whose data lives in the user's cache directory
and returns its DSN (a Unix socket, trust auth, no password). The server stops when the
last process that started it exits; the data stays for the next run.

As root: PostgreSQL refuses to run as root, so pgserver creates (with ``useradd``) a
system user ``pgserver`` and runs ``initdb``/``pg_ctl`` as that user; the data directory is
chowned to it and its parent directories are made traversable (``g+rx,o+rx``). So that
this never opens up root's home, the data of a root user goes to
``/var/cache/docstore/pgdata`` instead of ``~/.cache/docstore/pgdata``.
``DOCSTORE_EMBEDDED_DIR`` overrides the location in every case.

What a first start made (the data directory's missing parents, pgserver's runtime
directory, the ``pgserver`` user) is recorded in the data directory, so that :func:`clean`
(``docstore demo --clean``) removes that and nothing that was there before.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

from ..errors import DatabaseUnavailable
from ..extras import install_extra

__all__ = ["EmbeddedUnavailable", "clean", "data_dir", "start"]

ENV_DIR = "DOCSTORE_EMBEDDED_DIR"
_ROOT_DIR = Path("/var/cache/docstore/pgdata")
_SYSTEM_USER = "pgserver"  # the user pgserver runs PostgreSQL as when started by root
_RECORD = "docstore-made.json"  # in the data directory: what the first start created


class EmbeddedUnavailable(DatabaseUnavailable):
    """The embedded server could not be started (pgserver missing, or it failed)."""


def data_dir() -> Path:
    """Where the embedded server keeps its data."""
    configured = os.environ.get(ENV_DIR)
    if configured:
        return Path(configured).expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return _ROOT_DIR
    try:
        import platformdirs
    except ImportError:  # pgserver depends on it; this is only a fallback
        return Path.home() / ".cache" / "docstore" / "pgdata"
    return Path(platformdirs.user_cache_dir("docstore")) / "pgdata"


_servers: dict[Path, Any] = {}


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _runtime_dir() -> Path:
    """pgserver's runtime directory (its lock file, sometimes its sockets)."""
    import platformdirs

    return Path(platformdirs.user_runtime_path("python_PostgresServer"))


def _missing(path: Path) -> list[str]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(str(path))
        path = path.parent
    return missing


def start(pgdata: Path | None = None) -> str:
    """Start (or reuse) the embedded server; returns its DSN."""
    path = (pgdata or data_dir()).resolve()
    server = _servers.get(path)
    if server is None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset, at import time.
            warnings.simplefilter("ignore")
            try:
                import pgserver
            except ImportError:
                raise EmbeddedUnavailable(
                    "the embedded PostgreSQL needs the pgserver package: "
                    f"{install_extra('embedded')} (or give --dsn / DOCSTORE_URL)"
                ) from None
            first = not (path / "PG_VERSION").exists()
            made: dict[str, Any] = {
                "dirs": _missing(path.parent),
                "runtime_dirs": _missing(_runtime_dir()),
                "user": _SYSTEM_USER if _is_root() and not _user_exists(_SYSTEM_USER) else None,
            }
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                server = pgserver.get_server(  # type: ignore[attr-defined]
                    path, cleanup_mode="stop"
                )
            except Exception as exc:  # pgserver raises what its subprocesses raise
                raise EmbeddedUnavailable(
                    f"the embedded PostgreSQL did not start (data in {path}; its log is "
                    f"{path / 'log'}): {type(exc).__name__}: {exc}"
                ) from None
            if first:
                (path / _RECORD).write_text(json.dumps(made, indent=1), encoding="utf-8")
        _servers[path] = server
    uri: str = server.get_uri()
    return uri


def clean(pgdata: Path | None = None) -> list[str]:
    """Stop the embedded server and remove what docstore made for it: the data directory,
    the parents and runtime directories its first start created, and (as root) the
    ``pgserver`` user if that start created it. Returns what was removed.

    Raises :class:`EmbeddedUnavailable` if the server is in use by another process, or if
    the directory is not a PostgreSQL data directory (it is then left alone).
    """
    path = (pgdata or data_dir()).resolve()
    removed: list[str] = []
    if not path.exists():
        return removed
    if not (path / "PG_VERSION").exists():
        raise EmbeddedUnavailable(
            f"{path} is not the embedded server's data directory (no PG_VERSION): left alone"
        )
    try:
        made: dict[str, Any] = json.loads((path / _RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        made = {}  # made before docstore kept a record: the data directory only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = _servers.pop(path, None) or pgserver.get_server(  # type: ignore[attr-defined]
            path, cleanup_mode="delete"
        )
        server.cleanup_mode = "delete"
        server.cleanup()  # stops the server and deletes the data, if no other process uses it
    if path.exists():
        raise EmbeddedUnavailable(
            f"the embedded server in {path} is in use by another "
            "process: stop it (and its clients), then clean again"
        )
    removed.append(str(path))
    for directory in [*made.get("dirs", []), *made.get("runtime_dirs", [])]:
        _remove_if_unused(Path(directory), removed)
    user = made.get("user")
    if user == _SYSTEM_USER and _is_root() and _user_exists(user):
        done = subprocess.run(["userdel", user], capture_output=True, text=True)
        if done.returncode == 0:
            removed.append(f"user {user}")
    return removed


def _remove_if_unused(directory: Path, removed: list[str]) -> None:
    """Remove a directory docstore made if it holds nothing but pgserver's lock file."""
    if not directory.is_dir():
        return
    entries = list(directory.iterdir())
    if all(entry.name == ".lockfile" and entry.is_file() for entry in entries):
        shutil.rmtree(directory)
        removed.append(str(directory))
