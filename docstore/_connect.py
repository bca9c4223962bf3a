"""Connections: where the DSN comes from, how it is shown (never with its password), and
the checks both stores share."""

from __future__ import annotations

import os
import re
import select
from dataclasses import dataclass
from typing import Any, overload
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Conninfo, ConnStatus, ExecStatus
from psycopg.rows import tuple_row

from .errors import DatabaseUnavailable, TransactionEnded

__all__ = [
    "DEFAULT_SCHEMA",
    "LOCAL_SOCKET",
    "PG_VARS",
    "Held",
    "PoolSettings",
    "add_statement_timeout",
    "check_dsn",
    "connect_failure",
    "cursor",
    "describe_dsn",
    "forget_cursor",
    "has_rows",
    "idle_connection_is_dead",
    "keeps_cursor",
    "libpq_defaults",
    "new_cursor",
    "pool_settings",
    "redact",
    "resolve_dsn",
    "resolve_schema",
    "server_configured",
    "server_parts",
]


def resolve_dsn(dsn: str | None) -> str:
    """``dsn``, else ``DOCSTORE_URL``, else "" (libpq then reads PGHOST, PGUSER, ...)."""
    if dsn is not None:
        return dsn
    return os.environ.get("DOCSTORE_URL", "")


DEFAULT_SCHEMA = "docstore"

# libpq variables that say where a server is; any of them counts as "configured".
PG_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


def resolve_schema(schema: str | None) -> str:
    """``schema``, else ``DOCSTORE_SCHEMA``, else ``docstore``."""
    if schema is not None:
        return schema
    return os.environ.get("DOCSTORE_SCHEMA") or DEFAULT_SCHEMA


def server_configured(dsn: str | None = None) -> bool:
    """True when a DSN was given or the environment names a server (``DOCSTORE_URL`` or
    any of libpq's ``PG*`` location variables)."""
    return bool(dsn or os.environ.get("DOCSTORE_URL") or any(os.environ.get(v) for v in PG_VARS))


def add_statement_timeout(conninfo: str, kwargs: dict[str, Any], seconds: float | None) -> None:
    """Set the server's ``statement_timeout`` for every connection, as a startup option.

    It goes in libpq's ``options`` (appended to any the DSN or ``kwargs`` already have), so
    it costs no round trip and holds from the connection's first statement.
    """
    if seconds is None:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"statement_timeout must be a number of seconds > 0, not {seconds!r}")
    existing = kwargs.get("options")
    if existing is None:
        try:
            existing = conninfo_to_dict(conninfo).get("options")
        except psycopg.ProgrammingError:
            existing = None
    ms = max(1, round(seconds * 1000))
    kwargs["options"] = f"{existing or ''} -c statement_timeout={ms}".strip()


def check_dsn(dsn: str, what: str = "DSN") -> None:
    """Refuse a DSN libpq cannot parse, without echoing any of it. ``what`` names it in
    the message (``read_dsn``, ``listen_dsn``).

    libpq's parse errors quote the text they choke on, which may be the password (a URL
    missing its ``postgresql://``, a bad %-escape in the password): so every DSN is
    checked here before anything connects with it, and the error raised has no context
    (``__context__``, ``__cause__``) to leak.
    """
    try:
        conninfo_to_dict(dsn)
        return
    except psycopg.ProgrammingError:
        pass
    raise DatabaseUnavailable(
        f"cannot connect to PostgreSQL: the {what} cannot be parsed (not shown: it may hold a "
        "password); write it as postgresql://user:password@host:port/dbname or as "
        "'host=... port=... dbname=... user=...'"
    )


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """What both stores' ``connect`` hand to their pool, worked out once."""

    conninfo: str
    kwargs: dict[str, Any]
    options: dict[str, Any]
    name: str

    @property
    def probe_kwargs(self) -> dict[str, Any]:
        """Arguments for one direct connection made before the pool's."""
        timeout = max(1, round(float(self.options["timeout"])))
        return {
            **{k: v for k, v in self.kwargs.items() if k != "prepare_threshold"},
            "connect_timeout": timeout,
        }


def pool_settings(
    dsn: str | None,
    prepare_threshold: int | None,
    statement_timeout: float | None,
    pool_options: dict[str, Any],
    what: str = "DSN",
) -> PoolSettings:
    """The DSN (checked, never echoed), connection kwargs and pool options of a store."""
    conninfo = resolve_dsn(dsn)
    check_dsn(conninfo, what)
    options: dict[str, Any] = {"min_size": 1, "max_size": 10, "timeout": 10.0}
    options.update(pool_options)
    kwargs = {"autocommit": True, "prepare_threshold": prepare_threshold, **options.pop("kwargs", {})}
    add_statement_timeout(conninfo, kwargs, statement_timeout)
    return PoolSettings(conninfo, kwargs, options, f"docstore:{describe_dsn(conninfo)}")


def connect_failure(conninfo: str, exc: BaseException) -> DatabaseUnavailable:
    """Why connecting failed, in one line, with the password redacted."""
    text = str(exc).strip()
    reason = redact(text.splitlines()[0] if text else type(exc).__name__, conninfo)
    if "unsupported startup parameter" in reason:
        # PgBouncer: it refuses libpq's `options`, which carries statement_timeout=.
        reason += (
            "; a connection pooler (PgBouncer) refuses startup options: drop "
            "statement_timeout= and set it on the role instead (ALTER ROLE ... SET "
            "statement_timeout = '5s'), see docs/scaling.md"
        )
    return DatabaseUnavailable(f"cannot connect to PostgreSQL at {describe_dsn(conninfo)}: {reason}")


LOCAL_SOCKET = "[local socket]"
"""How :func:`describe_dsn` shows the host of a DSN that names none: libpq then uses
the Unix socket in its compiled-in directory (``/var/run/postgresql`` on Debian)."""


def libpq_defaults() -> dict[str, str]:
    """The values libpq gives the parameters a DSN leaves out, as it would now: from its
    ``PG*`` variables, else compiled in (the port), else the OS user's name (the user)."""
    return {
        option.keyword.decode(): option.val.decode()
        for option in Conninfo.get_defaults()
        if option.val is not None and option.keyword != b"password"
    }


def describe_dsn(dsn: str) -> str:
    """``user@host:port/dbname`` for messages and reprs: no password, ever. What the DSN
    leaves out is shown as libpq fills it in (its ``PG*`` variables, the OS user's name,
    the database of the user's name, the local socket)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    defaults = libpq_defaults()
    host = (
        parts.get("host")
        or parts.get("hostaddr")
        or defaults.get("host")
        or defaults.get("hostaddr")
        or (LOCAL_SOCKET if os.name == "posix" else "localhost")
    )
    port = parts.get("port") or defaults.get("port") or "5432"
    user = parts.get("user") or defaults.get("user") or ""
    db = parts.get("dbname") or defaults.get("dbname") or user
    if _misparsed(dsn, parts):
        return "<unparseable DSN>"
    return f"{str(user) + '@' if user else ''}{host}:{port}/{db}"


def _misparsed(dsn: str, parts: dict[str, Any]) -> bool:
    """Whether libpq read a URL's password as something else: one holding an unescaped
    '/' parses with it in the port and dbname (``postgresql://u:pa/ss@h/db``: host u, port
    pa, dbname ``ss@h/db``), which a description would then show."""
    url = _URL_PASSWORD.match(dsn)
    return url is not None and parts.get("password") != unquote(url.group(1))


def server_parts(dsn: str) -> tuple[str, int | None, str]:
    """(host, port, dbname) of a DSN as :func:`describe_dsn` reads them, for telemetry:
    never the user or the password. Several hosts stay as written (``a,b``), and so
    does their port list (then None)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "", None, ""
    host = str(parts.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(parts.get("port") or os.environ.get("PGPORT") or "5432")
    user = str(parts.get("user") or os.environ.get("PGUSER") or "")
    db = str(parts.get("dbname") or os.environ.get("PGDATABASE") or user)
    if _misparsed(dsn, parts):
        return "", None, ""
    return host, int(port) if port.isdigit() else None, db


# What may be a password in a DSN's text, parsed or not: the URL form's
# ``[scheme://]user:PASSWORD@`` and any ``password=VALUE`` (key/value, or a URL's query).
_URL_PASSWORD = re.compile(
    r"^\s*(?:[A-Za-z][A-Za-z0-9+.-]*://|(?![A-Za-z][A-Za-z0-9+.-]*://))[^\s/@:]*:([^\s@]+)@"
)
_KV_PASSWORD = re.compile(r"(?:^|[\s?&])password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)")
_QUOTED = re.compile(r'"([^"]+)"')


def _secrets(dsn: str) -> tuple[set[str], bool]:
    """The DSN's possible passwords, as written and decoded; and whether libpq parses it."""
    found: set[str] = set()
    try:
        password = conninfo_to_dict(dsn).get("password")
        parsed = True
    except psycopg.ProgrammingError:
        password, parsed = None, False
    if password:
        found.add(str(password))
    url = _URL_PASSWORD.match(dsn)
    if url:
        found.update((url.group(1), unquote(url.group(1))))
    for match in _KV_PASSWORD.finditer(dsn):
        value = match.group(1)
        found.update((value, unquote(value), value[1:-1] if value[:1] == "'" else value))
    if not parsed:
        # A word that is no key=value pair may be anything, the password pasted alone.
        found.update(word for word in dsn.split() if "=" not in word)
    return {secret for secret in found if secret}, parsed


def redact(text: str, dsn: str) -> str:
    """``text`` with the DSN's password blanked out: the one redaction of every message
    that may quote a DSN.

    It finds the password whether libpq parses the DSN or not (a URL without its scheme,
    a bad %-escape); for a DSN it cannot parse, it also blanks every word of it that is
    no ``key=value`` pair, and each quoted piece of it in ``text``, which is how libpq's
    parse errors show the text they choke on (``missing "=" after "..."``, ``invalid
    percent-encoded token: "..."``).
    """
    if not dsn:
        return text
    secrets, parsed = _secrets(dsn)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    if not parsed:
        text = _QUOTED.sub(lambda m: '"***"' if m.group(1) != "=" and m.group(1) in dsn else m.group(0), text)
    return text


_POLLER = "_docstore_poller"
_BAD = int(ConnStatus.BAD)  # what conn.closed compares the status with
_HAS_POLL = hasattr(select, "poll")


def idle_connection_is_dead(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """True when an idle connection has data waiting: the server said goodbye.

    An idle connection receives nothing unless the server closes it (a terminated backend,
    a restart), so a readable socket means dead. Checking costs one ``select`` and no
    round trip, where a ``SELECT 1`` ping would double the cost of a small read.
    ``poll`` rather than ``select``: select refuses descriptors at or above 1024, which a
    process with many files or sockets open hands out.
    """
    if conn.pgconn.status == _BAD:  # conn.closed, read without its property (broken is closed too)
        return True
    try:
        if not _HAS_POLL:  # Windows: no poll, and no 1024 ceiling either
            return bool(select.select([conn.pgconn.socket], [], [], 0)[0])
        # One poller per connection, kept on it: its socket is its own for its life.
        poller = getattr(conn, _POLLER, None)
        if poller is None:
            poller = select.poll()
            poller.register(conn.pgconn.socket, select.POLLIN | select.POLLPRI)
            setattr(conn, _POLLER, poller)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.OperationalError):
        return True


class Held:
    """The connection a ``store.transaction()`` block pins for its context.

    Tasks (and copied contexts) created inside the block inherit it; ``open`` turns
    False when the block ends, so that they can tell the connection is no longer theirs.
    """

    __slots__ = ("conn", "open", "pool")

    def __init__(self, pool: object, conn: Any) -> None:
        self.pool = pool
        self.conn = conn
        self.open = True

    def ended(self, kind: str, name: str | None) -> TransactionEnded:
        """The error for a write from a context whose transaction block has ended."""
        where = f"{kind} {name!r}: " if name is not None else (f"kind {kind!r}: " if kind else "")
        return TransactionEnded(
            f"{where}this write comes from a task or context created inside a "
            "store.transaction() block that has ended (committed or rolled back), so it "
            "cannot join that transaction and was not run. Await the task inside the block, "
            "or create it outside"
        )


# A pooled connection keeps one cursor for the store's statements: a new cursor per
# statement (what conn.execute() makes) is a measurable part of a get's client CPU
# (docs/performance-notes.md, "Numbers behind choices in the code").
_CURSOR = "_docstore_cursor"

KEEP_CURSOR_CHARS = 64 * 1024
"""A cursor holds its last result and parameters until its next statement: one whose
statement returned more than one row, or sent or read more text than this, is let go
rather than kept on an idle pooled connection."""


def keeps_cursor(rows: list[Any], sends: int, texts: tuple[int, ...] | None = None) -> bool:
    """Whether a statement that sent ``sends`` bytes of documents and returned ``rows``
    leaves its cursor small enough to keep. Only single rows are measured (a read of
    many would spend on the count what the kept cursor saves), and of them only the
    columns ``texts`` when given (docstore._plan.Stmt)."""
    if sends > KEEP_CURSOR_CHARS or len(rows) > 1:
        return False
    if not rows:
        return True
    row = rows[0]
    size = 0
    for i in range(len(row)) if texts is None else texts:
        value = row[i]
        if type(value) is str:
            size += len(value)
    return size <= KEEP_CURSOR_CHARS


@overload
def cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]: ...


@overload
def cursor(conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncCursor[Any]: ...


def cursor(conn: Any) -> Any:
    """The connection's cursor for the store's statements, made on first use."""
    cur = getattr(conn, _CURSOR, None)
    if cur is None or cur.closed:
        cur = new_cursor(conn)
        setattr(conn, _CURSOR, cur)
    return cur


@overload
def new_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]: ...


@overload
def new_cursor(conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncCursor[Any]: ...


def new_cursor(conn: Any) -> Any:
    """A cursor of tuple rows, whatever row factory someone gave the pooled connection
    (the pool is public, for SQL beside the store, and keeps a connection's settings)."""
    return conn.cursor(row_factory=tuple_row)


def forget_cursor(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Drop the connection's cursor (and the result it holds); the next use makes one."""
    setattr(conn, _CURSOR, None)


# A member read off an Enum class goes through EnumType.__getattr__ (Python 3.11), and
# an int subclass makes == try the reflected operation first: a plain int, read once.
_TUPLES_OK = int(ExecStatus.TUPLES_OK)


def has_rows(cur: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> bool:
    """Whether the last statement returned rows (as ``cur.description is not None``,
    which would build a Column object per column on every statement)."""
    res = cur.pgresult
    return res is not None and res.status == _TUPLES_OK
