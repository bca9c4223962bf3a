"""Where the command connects, and the store it opens there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .._connect import redact, resolve_dsn, server_configured
from ..errors import DatabaseUnavailable
from ..store import DocStore
from ._errors import CliError
from ._kinds import registry

__all__ = ["Settings", "dsn_configured", "open_store"]


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
    _resolved: str | None = field(default=None, repr=False)

    def resolve(self, *, embedded_by_default: bool = False) -> str:
        """The DSN to use: --embedded's server, --dsn, DOCSTORE_URL, or libpq's PG* variables.

        ``embedded_by_default`` (the demo): start the embedded server when none of those
        is configured.
        """
        if self._resolved is None:
            if self.embedded or (embedded_by_default and not dsn_configured(self.dsn)):
                from ..embedded import start

                self._resolved = start()
            else:
                self._resolved = resolve_dsn(self.dsn)
        return self._resolved

    def redact(self, text: str) -> str:
        """``text`` without the password of any DSN this command was given."""
        for dsn in (self.dsn, self._resolved, os.environ.get("DOCSTORE_URL")):
            if dsn:
                text = redact(text, dsn)
        return text


def dsn_configured(dsn: str | None) -> bool:
    """True when a DSN was given or the environment names a server."""
    return server_configured(dsn)


@contextmanager
def open_store(settings: Settings, *, embedded_by_default: bool = False) -> Iterator[DocStore]:
    """A store on the configured database, with the command's kinds; closed after."""
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
        hint = (
            ""
            if dsn_configured(settings.dsn) or settings.embedded
            else (" (no --dsn, DOCSTORE_URL or PG* variable is set; --embedded starts a local server)")
        )
        raise CliError(f"{exc}{hint}") from None
    with store:
        yield store
