"""The command's own queries (status, log, the kinds found in a store) on a store's pool.

A module of its own so that both ``_kinds`` (which asks the store what kinds it holds) and
``_store`` (which opens a store with those kinds) can use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from ..errors import SchemaMissing
from ..store import DocStore
from ._errors import CliError

__all__ = ["raw"]


def raw(
    store: DocStore, query: sql.Composable, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Rows of a query of the command's own (status, log, analytics) on the store's pool."""
    try:
        with store.pool.connection() as conn:
            rows: list[tuple[Any, ...]] = conn.execute(query, params).fetchall()
            return rows
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        # open_store says where and what to run, for the shell user.
        raise SchemaMissing(f"docstore's tables are missing from schema {store.schema!r}") from None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(first) from None
