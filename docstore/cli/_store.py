"""Where the command connects, and the store it opens there."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from psycopg import ConnectionInfo

from ..dsn import redact
from ..errors import DatabaseUnavailable, KindMismatch, SchemaMissing
from ..store import DocStore
from ._errors import CliError
from ._kinds import registry
from ._where import Server, connected_to, find_server, libpq_chose

__all__ = ["Settings", "dsn_configured", "open_store"]

_LOG_KIND = re.compile(r"kind (.+?) is a log kind: ")


@dataclass
class Settings:
    """The global options, as parsed."""

    dsn: str | None = None
    schema: str = "docstore"
    json: bool = False
    embedded: bool = False
    kinds: str | None = None
    schema_given: bool = False
    author: str | None = None
    schema_source: str = ""
    _server: Server | None = field(default=None, repr=False)

    def resolve(self, *, embedded_by_default: bool = False) -> str:
        """The DSN to use: --embedded's server, else the first of --dsn, DOCSTORE_URL,
        AURITE_DB_* and libpq's PG* variables (docstore.cli._where).

        ``embedded_by_default`` (the demo): start the embedded server when none of those
        is configured.
        """
        if self._server is None:
            if self.embedded or (embedded_by_default and not dsn_configured(self.dsn)):
                from .embedded import start

                self._server = Server(start(), "--embedded")
            else:
                self._server = find_server(self.dsn)
        return self._server.dsn

    @property
    def server(self) -> Server:
        """The server :meth:`resolve` chose."""
        self.resolve()
        assert self._server is not None
        return self._server

    def redact(self, text: str) -> str:
        """``text`` without the password of any DSN this command was given."""
        resolved = self._server.dsn if self._server is not None else None
        for dsn in (self.dsn, resolved, os.environ.get("DOCSTORE_URL"), os.environ.get("AURITE_DB_URL")):
            if dsn:
                text = redact(text, dsn)
        return text

    def where(self, info: ConnectionInfo) -> dict[str, str | None]:
        """Where the command is connected: the server as ``user@host:port/db`` and the
        schema, each with what chose it (None: libpq's defaults, docstore's schema)."""
        return {
            "database": connected_to(info),
            "server_from": self.server.source or None,
            "schema": self.schema,
            "schema_from": self.schema_source or None,
        }

    def place(self, info: ConnectionInfo) -> str:
        """Where the command is connected, in words: ``schema 'x' (from DOCSTORE_SCHEMA) in
        user@host:port/db (from AURITE_DB_URL)``."""
        server = self.server
        schema = f"schema {self.schema!r}" + (f" (from {self.schema_source})" if self.schema_source else "")
        return f"{schema} in {connected_to(info)}" + (f" (from {server.source})" if server.source else "")

    def tables_missing(self, info: ConnectionInfo) -> str:
        """The CLI's "tables are missing" message: where, and the command that makes them."""
        given = [option for option in ("--dsn", "--schema") if self._given(option)]
        same = f" with the same {' and '.join(given)}" if given else ""
        text = f"docstore's tables are missing from {self.place(info)}: "
        text += f"run `docstore init`{same} to create them"
        if not self.server.configured:
            text += (
                f"; {libpq_chose(info)}; if your store is elsewhere, say where with --dsn or "
                "DOCSTORE_URL (or AURITE_DB_URL, PGHOST, ...; see docs/configuration.md)"
            )
        return text

    def _given(self, option: str) -> bool:
        if option == "--dsn":
            return self.server.source == "--dsn"
        return self.schema_source == "--schema"


def dsn_configured(dsn: str | None) -> bool:
    """True when a DSN was given or the environment names a server (DOCSTORE_URL,
    AURITE_DB_*, PG*)."""
    return find_server(dsn).configured


@contextmanager
def open_store(settings: Settings, *, embedded_by_default: bool = False) -> Iterator[DocStore]:
    """A store on the configured database, with the command's kinds; closed after.

    A "tables are missing" error from inside the block is said again for a shell user:
    where the command connected and the command to run, not the library's Python call.
    """
    dsn = settings.resolve(embedded_by_default=embedded_by_default)
    try:
        store = DocStore.connect(
            dsn,
            schema=settings.schema,
            kinds=registry(settings.kinds),
            author=settings.author,
            min_size=1,
            max_size=2,
            timeout=5.0,
        )
    except DatabaseUnavailable as exc:
        source = settings.server.source
        if settings.server.configured:
            hint = f" (server from {source})"
        else:
            hint = (
                f"; {libpq_chose()}; say where the server is with --dsn or DOCSTORE_URL (or "
                "AURITE_DB_URL, PGHOST, ...; see docs/configuration.md), or --embedded starts a local server"
            )
        raise CliError(f"{exc}{hint}") from None
    with store:
        try:
            yield store
        except SchemaMissing as exc:
            if "tables are missing" not in str(exc):
                raise
            with store.pool.connection() as conn:
                message = settings.tables_missing(conn.info)
            raise CliError(message, error_type="SchemaMissing") from None
        except KindMismatch as exc:
            # The library names the methods to use (append, read(after=...)).
            log = _LOG_KIND.match(str(exc))
            if log is None:
                raise
            raise CliError(
                f"kind {log.group(1)} is a log kind: its items are appended, never written whole "
                "or read by version, so this command works on snapshot kinds only (`docstore "
                "history AGENT SESSION` reads a conversation; `docstore get` shows a log's head)",
                error_type="KindMismatch",
            ) from None
