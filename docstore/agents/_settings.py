"""The StorageManager's settings: the ``AURITE_*`` environment, and how sessions are named."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from psycopg.conninfo import make_conninfo

from docstore.errors import DocStoreError

__all__ = [
    "CONVERSATION",
    "EnvSettings",
    "StorageConfigError",
    "conversation_name",
    "database_from_env",
    "settings_from_env",
]

CONVERSATION = "conversation"
"""The kind conversations are stored under."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


class StorageConfigError(DocStoreError, ValueError):
    """Persistence is switched on but its settings are missing or wrong."""


@dataclass(frozen=True, slots=True)
class EnvSettings:
    """Where ``from_env`` connects; ``dsn`` may hold a password, so it is never shown."""

    dsn: str
    schema: str
    read_dsn: str | None = None

    def __repr__(self) -> str:
        reads = ", read_dsn=<hidden>" if self.read_dsn else ""
        return f"EnvSettings(dsn=<hidden>, schema={self.schema!r}{reads})"


def settings_from_env(
    environ: Mapping[str, str] | None = None, schema: str | None = None
) -> EnvSettings | None:
    """The database settings of ``AURITE_*`` variables; None when persistence is off.

    Raises :class:`StorageConfigError` naming every missing or malformed variable (and
    never a value, so a password cannot leak into a log).
    """
    env = os.environ if environ is None else environ
    flag = env.get("AURITE_ENABLE_DB", "").strip().lower()
    if flag not in _TRUE:
        if flag not in _FALSE:
            # A typo such as "ture" must not switch persistence off without a word.
            raise StorageConfigError(
                "AURITE_ENABLE_DB must be one of 1/true/yes/on or 0/false/no/off (any case)"
            )
        return None
    schema = schema or env.get("AURITE_DB_SCHEMA") or "docstore"
    # A streaming replica for reads (docs/scaling.md); writes always go to the primary.
    read_url = env.get("AURITE_DB_READ_URL", "").strip() or None
    return EnvSettings(_dsn(env, "AURITE_ENABLE_DB is on but"), schema, read_url)


_LOCATION = ("AURITE_DB_URL", "AURITE_DB_HOST", "AURITE_DB_PORT", "AURITE_DB_USER", "AURITE_DB_NAME")
"""The variables that say where the framework's database is (its password alone does not)."""


def database_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The DSN the ``AURITE_DB_*`` variables name, and which of them named it
    (``"AURITE_DB_URL"``, or the parts set, ``"AURITE_DB_HOST, AURITE_DB_USER, ..."``);
    None when none of ``AURITE_DB_URL``, ``_HOST``, ``_PORT``, ``_USER``, ``_NAME`` is
    set. ``AURITE_ENABLE_DB`` plays no part: it switches the framework's persistence on,
    it does not say where the database is. The ``docstore`` command connects there when neither ``--dsn`` nor
    ``DOCSTORE_URL`` is given. Raises :class:`StorageConfigError` as ``from_env`` does.
    """
    env = os.environ if environ is None else environ
    named = [var for var in _LOCATION if env.get(var, "").strip()]
    if not named:
        return None
    dsn = _dsn(env, f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} set but")
    return dsn, "AURITE_DB_URL" if "AURITE_DB_URL" in named else ", ".join(named)


def _dsn(env: Mapping[str, str], context: str) -> str:
    """The DSN of ``AURITE_DB_URL``, else of its parts; ``context`` opens the error."""
    url = env.get("AURITE_DB_URL", "").strip()
    if url:
        return url
    missing = [var for var in ("AURITE_DB_USER", "AURITE_DB_NAME") if not env.get(var)]
    if missing:
        raise StorageConfigError(
            f"{context} {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: set AURITE_DB_URL, or "
            "AURITE_DB_USER and AURITE_DB_NAME (and AURITE_DB_HOST, AURITE_DB_PORT, "
            "AURITE_DB_PASSWORD as needed)"
        )
    port = env.get("AURITE_DB_PORT") or "5432"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise StorageConfigError("AURITE_DB_PORT must be a port number (1-65535)")
    return make_conninfo(
        host=env.get("AURITE_DB_HOST") or "localhost",
        port=port,
        user=env["AURITE_DB_USER"],
        password=env.get("AURITE_DB_PASSWORD") or None,
        dbname=env["AURITE_DB_NAME"],
    )


def conversation_name(agent_name: str, session_id: str) -> str:
    """The document name of a session: its session id, as the framework keys sessions.

    ``agent_name`` takes no part (it is kept in the head's metadata): ``save_session``,
    ``get_session`` and the agent-centred ``save_full_history``/``load_history`` address
    the same session.
    """
    return session_id
