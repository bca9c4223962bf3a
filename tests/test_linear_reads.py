"""Export, and iter in an order no index holds, read each row a bounded number of times:
their work grows linearly with the store, not with the square of it.

The measure is the server's own count of rows it read from the documents table
(pg_stat_user_tables), not a time: a quadratic export of 2,000 documents in pages of 20
reads ~200,000 rows, a linear one about 4,000.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import BaseModel

from docstore import DocStore

N = 2000
PAGE = 20


class Config(BaseModel):
    rank: int
    label: str


def _seed(store: DocStore) -> None:
    store.register("config", Config)
    with store.pool.connection() as conn:
        conn.execute(
            sql.SQL("""
            INSERT INTO {}.documents (kind, name, mode, version, data)
            SELECT 'config', 'doc-' || lpad(i::text, 5, '0'), 's', 1,
                   jsonb_build_object('rank', (i * 7919) %% %s, 'label', 'x' || i)
            FROM generate_series(1, %s) AS i""").format(sql.Identifier(store.schema)),
            (N, N),
        )
        conn.execute(sql.SQL("ANALYZE {}.documents").format(sql.Identifier(store.schema)))


def _rows_read(dsn: str, schema: str) -> int:
    """Rows read from the schema's documents table so far, once the counts settle."""
    last, stable_since = -1, time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
                "FROM pg_stat_user_tables WHERE schemaname = %s AND relname = 'documents'",
                (schema,),
            ).fetchone()
            now = int(row[0]) if row else 0
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since > 1.1:
                return now
            time.sleep(0.1)


def _work(dsn: str, store: DocStore, run: Callable[[], Any]) -> tuple[int, Any]:
    before = _rows_read(dsn, store.schema)
    result = run()
    return _rows_read(dsn, store.schema) - before, result


@pytest.mark.slow
def test_export_reads_each_document_a_bounded_number_of_times(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    store = docstore_factory()
    _seed(store)
    read, lines = _work(docstore_dsn, store, lambda: list(store.export(batch_size=PAGE)))
    assert len(lines) == N  # no versions were seeded: one head line each
    assert read < 5 * N, f"export read {read:,} document rows for {N:,} documents"


@pytest.mark.slow
def test_iter_by_a_json_field_reads_each_document_a_bounded_number_of_times(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore]
) -> None:
    store = docstore_factory()
    _seed(store)
    read, docs = _work(
        docstore_dsn, store, lambda: list(store.iter("config", order_by="data.rank", batch_size=PAGE))
    )
    assert [d.data.rank for d in docs] == list(range(N))
    assert read < 5 * N, f"iter read {read:,} document rows for {N:,} documents"
    read, docs = _work(
        docstore_dsn,
        store,
        lambda: list(
            store.iter("config", order_by="-data.rank", where={"rank": {"$gte": 10}}, batch_size=PAGE)
        ),
    )
    assert [d.data.rank for d in docs] == list(range(N - 1, 9, -1))
    assert read < 5 * N, f"iter read {read:,} document rows for {N:,} documents"
