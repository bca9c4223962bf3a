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
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from .errors import DatabaseUnavailable

__all__ = ["EmbeddedUnavailable", "data_dir", "start"]

ENV_DIR = "DOCSTORE_EMBEDDED_DIR"
_ROOT_DIR = Path("/var/cache/docstore/pgdata")


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


def start(pgdata: Path | None = None) -> str:
    """Start (or reuse) the embedded server; returns its DSN."""
    path = (pgdata or data_dir()).resolve()
    server = _servers.get(path)
    if server is None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset, at import time.
            warnings.simplefilter("ignore")
            try:
                import pgserver  # type: ignore[import-untyped,unused-ignore]
            except ImportError:
                raise EmbeddedUnavailable(
                    "the embedded PostgreSQL needs the pgserver package: "
                    "pip install 'docstore[embedded]' (or give --dsn / DOCSTORE_URL)") from None
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                server = pgserver.get_server(  # type: ignore[attr-defined,unused-ignore]
                    path, cleanup_mode="stop")
            except Exception as exc:  # pgserver raises what its subprocesses raise
                raise EmbeddedUnavailable(
                    f"the embedded PostgreSQL did not start (data in {path}; its log is "
                    f"{path / 'log'}): {type(exc).__name__}: {exc}") from None
        _servers[path] = server
    uri: str = server.get_uri()
    return uri
