"""Where the command connects, in one documented order, and how it says so.

The server: ``--dsn``, else ``DOCSTORE_URL``, else the framework's ``AURITE_DB_URL`` (or
its ``AURITE_DB_HOST``/``_PORT``/``_USER``/``_PASSWORD``/``_NAME``) when set, else
libpq's ``PG*`` variables and its defaults. The schema: ``--schema``, else
``DOCSTORE_SCHEMA``, else ``AURITE_DB_SCHEMA``, else ``docstore``. Messages name the
place as ``user@host:port/db`` and what chose it, never with a password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import ConnectionInfo

from ..agents import database_from_env
from ..dsn import PG_VARS, libpq_defaults

__all__ = ["NOTHING_CONFIGURED", "Server", "connected_to", "find_schema", "find_server", "libpq_chose"]

NOTHING_CONFIGURED = "nothing was configured (no --dsn, DOCSTORE_URL, AURITE_DB_* or PG* variable)"


@dataclass(frozen=True)
class Server:
    """The DSN to connect with (never shown: it may hold a password) and what chose it:
    ``--dsn``, ``--embedded``, ``DOCSTORE_URL``, ``AURITE_DB_URL``, the ``AURITE_DB_*`` or
    ``PG*`` variables set, or ``""`` when nothing was configured."""

    dsn: str
    source: str

    @property
    def configured(self) -> bool:
        return bool(self.source)


def find_server(dsn: str | None, environ: Mapping[str, str] | None = None) -> Server:
    """The server, by the order in this module's docstring."""
    env = os.environ if environ is None else environ
    if dsn is not None:
        return Server(dsn, "--dsn")
    if env.get("DOCSTORE_URL"):
        return Server(env["DOCSTORE_URL"], "DOCSTORE_URL")
    aurite = database_from_env(env)
    if aurite is not None:
        return Server(*aurite)
    return Server("", ", ".join(var for var in PG_VARS if env.get(var)))


def find_schema(schema: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The schema and what chose it (``""``: the default)."""
    env = os.environ if environ is None else environ
    if schema:
        return schema, "--schema"
    for var in ("DOCSTORE_SCHEMA", "AURITE_DB_SCHEMA"):
        if env.get(var):
            return env[var], var
    return "docstore", ""


def connected_to(info: ConnectionInfo) -> str:
    """``user@host:port/db`` of an open connection, as libpq resolved it (a Unix socket's
    host is its directory)."""
    return f"{info.user}@{info.host}:{info.port}/{info.dbname}"


def libpq_chose(info: ConnectionInfo | None = None) -> str:
    """What libpq's defaults chose when nothing was configured: of the open connection
    ``info``, else (the connection failed) as libpq's defaults say now."""
    if info is not None:
        host = f"the Unix socket in {info.host}" if info.host.startswith("/") else f"host {info.host}"
        user, db, port = info.user, info.dbname, str(info.port)
    else:
        defaults = libpq_defaults()
        host = "its default Unix socket" if os.name == "posix" else "localhost"
        user = defaults.get("user", "")
        db, port = defaults.get("dbname") or user, defaults.get("port", "5432")
    chose = f"user {user}, database {db}, {host}, port {port}"
    return f"{NOTHING_CONFIGURED}, so libpq used its defaults ({chose})"
