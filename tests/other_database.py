"""A transaction held open in another database of the test server's cluster.

PostgreSQL's snapshots are cluster-wide: a transaction with an id, open in any database,
holds back every snapshot's xmin, in this database too. The feed must not take that for
one of its own writers (docs/changes.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import make_conninfo


@contextmanager
def transaction_in_another_database(dsn: str) -> Iterator[int]:
    """Create a database of its own next to ``dsn``'s, open a transaction there that holds
    a transaction id (yielded) until the block ends, then drop the database."""
    name = f"docstore_other_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            with psycopg.connect(make_conninfo(dsn, dbname=name)) as other:
                row = other.execute("SELECT pg_current_xact_id()::text").fetchone()
                assert row is not None
                yield int(row[0])
                other.rollback()
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
