"""Connection strings (DSNs) as docstore reads and shows them: where one comes from, how
it is checked, and how it is shown without its password.

For programs and layers built on docstore, so that every message they print about a
server says it the way the store's own errors do, and never leaks a password; and the
check the stores' pools run on an idle connection, for pools of their own.
"""

from __future__ import annotations

from ._connect import (
    LOCAL_SOCKET,
    PG_VARS,
    check_dsn,
    describe_dsn,
    idle_connection_is_dead,
    libpq_defaults,
    redact,
    resolve_dsn,
    server_configured,
)

__all__ = [
    "LOCAL_SOCKET",
    "PG_VARS",
    "check_dsn",
    "describe_dsn",
    "idle_connection_is_dead",
    "libpq_defaults",
    "redact",
    "resolve_dsn",
    "server_configured",
]
