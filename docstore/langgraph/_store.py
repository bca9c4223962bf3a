"""LangGraph's ``BaseStore`` on docstore: every item a document, every write a version.

Writes go through docstore's API (validation, history, the change feed, one
transaction per batch). Reads are single statements over the store's public
``current_documents`` view, joined with two tables of the adapter's own beside it:
``<kind>_ttl`` (expiry, which must change on reads without writing versions) and, for
vector search, ``<kind>_vectors`` (pgvector embeddings of each item's current version).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, cast

import orjson
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)
from psycopg import sql
from pydantic import TypeAdapter, ValidationError

from docstore import Doc, DocStore, DocStoreError, DocumentInvalid, DocumentNotFound, InvalidKey

from ._query import compile_filter, item_name, prefix_text, select_namespaces, split_name

__all__ = ["DocStoreStore", "VectorIndexConfig", "VectorSearchUnavailable"]

DEFAULT_KIND = "langgraph_item"
_DISTANCE = {"cosine": "<=>", "l2": "<->", "inner_product": "<#>"}
# pgvector's distances, made into scores that grow with similarity (LangGraph's scores).
_SCORE = {"cosine": "1 - s.dist", "l2": "-s.dist", "inner_product": "-s.dist"}
_PGVECTOR_HINT = (
    "install pgvector on the server (Debian/Ubuntu with PGDG's packages: apt install "
    "postgresql-<major>-pgvector; Debian 13: postgresql-17-pgvector; or use docstore's "
    "embedded server, whose PostgreSQL ships it: pip install 'docstore[embedded]')"
)


class VectorIndexConfig(IndexConfig, total=False):
    """LangGraph's ``IndexConfig`` with pgvector's choices, as LangGraph's PostgresStore
    names them."""

    distance_type: Literal["cosine", "l2", "inner_product"]
    """How near two embeddings are (default cosine); scores grow with similarity."""
    vector_type: Literal["vector", "halfvec"]
    """The column's type: ``halfvec`` (pgvector 0.7+) stores half-precision floats."""


class VectorSearchUnavailable(DocStoreError):
    """Vector search was configured, but the server has no pgvector extension."""


class DocStoreStore(BaseStore):
    """A LangGraph store whose items are documents of one docstore kind.

    ``index`` (LangGraph's ``IndexConfig``: ``dims``, ``embed``, ``fields``, plus
    ``distance_type`` ``cosine`` | ``l2`` | ``inner_product`` and ``vector_type``
    ``vector`` | ``halfvec``) enables ``search(query=...)`` through pgvector; ``ttl``
    (LangGraph's ``TTLConfig``) sets default expiry. Call :meth:`setup` once.
    """

    supports_ttl = True

    def __init__(
        self,
        store: DocStore,
        *,
        kind: str = DEFAULT_KIND,
        index: VectorIndexConfig | IndexConfig | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        if len(kind) > 54:  # its tables' names (`<kind>_vectors`) must fit in 63 bytes
            raise ValueError(f"kind {kind!r} is longer than 54 characters")
        self.docstore = store
        self.kind = kind
        if kind not in store.kinds:
            store.register(kind, dict[str, Any])
        self.ttl_config = ttl
        self.index_config: dict[str, Any] | None = None
        self.embeddings: Embeddings | None = None
        if index is not None:
            self.index_config, self.embeddings = _index(index)
        self._models: dict[tuple[str, ...], TypeAdapter[Any]] = {}
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._tables = {
            "view": sql.Identifier(store.schema, "current_documents"),
            "ttl": sql.Identifier(store.schema, f"{kind}_ttl"),
            "vectors": sql.Identifier(store.schema, f"{kind}_vectors"),
        }

    @classmethod
    @contextmanager
    def from_conn_string(
        cls, dsn: str | None = None, *, schema: str | None = None, **options: Any
    ) -> Iterator[DocStoreStore]:
        """A store on a new :class:`DocStore` connected to ``dsn``, closed on exit."""
        with DocStore.connect(dsn, schema=schema) as docstore:
            yield cls(docstore, **options)

    # -- set-up, models, history -------------------------------------------------------

    def setup(self) -> None:
        """Create docstore's tables and the adapter's (idempotent); with ``index``, check
        pgvector and create its extension (:class:`VectorSearchUnavailable` without it)."""
        self.docstore.init_schema()
        with self.docstore.pool.connection() as conn:
            if self.index_config is not None:
                row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
                if row is None:
                    raise VectorSearchUnavailable(
                        f"search(query=...) needs PostgreSQL's pgvector extension, which this server "
                        f"does not have: {_PGVECTOR_HINT}"
                    )
            with conn.transaction():
                # Several processes may set up at once; CREATE ... IF NOT EXISTS alone races.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"docstore.langgraph.{self.kind}",)
                )
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY,"
                        " ttl_minutes double precision NOT NULL, expires_at timestamptz NOT NULL)"
                    ).format(self._tables["ttl"])
                )
                if self.index_config is not None:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                    have = str((version.fetchone() or ("0",))[0])
                    if self._vector_type == "halfvec" and _version(have) < (0, 7):
                        raise VectorSearchUnavailable(
                            f"vector_type 'halfvec' needs pgvector 0.7 or later; this server has {have} "
                            "(use vector_type 'vector', or upgrade pgvector)"
                        )
                    conn.execute(
                        sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {} (name text NOT NULL, version bigint NOT NULL,"
                            " field text NOT NULL, embedding {}({}) NOT NULL,"
                            " PRIMARY KEY (name, version, field))"
                        ).format(
                            self._tables["vectors"],
                            sql.SQL(self._vector_type),
                            sql.Literal(int(self.index_config["dims"])),
                        )
                    )

    def register_model(self, prefix: Sequence[str], model: Any) -> None:
        """Validate every value put under namespace ``prefix`` (and below) with ``model``
        (anything Pydantic's TypeAdapter takes); the longest registered prefix applies.
        A value is stored as the model's JSON dump, so it must dump to an object."""
        self._models[tuple(prefix)] = model if isinstance(model, TypeAdapter) else TypeAdapter(model)

    def name_of(self, namespace: Sequence[str], key: str) -> str:
        """The docstore name of an item (for ``store.docstore``'s own methods)."""
        return item_name(namespace, key)

    def history(self, namespace: Sequence[str], key: str) -> list[Doc[dict[str, Any]]]:
        """Every version of the item, oldest first, deletions (tombstones) included;
        ``DocumentNotFound`` for an item never written (or purged)."""
        return self.docstore.versions(self.kind, item_name(namespace, key))

    # -- the interface -----------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops``: reads first, then the writes, in one transaction (as LangGraph's
        PostgresStore does); results in the order of ``ops``."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
            if isinstance(op, GetOp | PutOp) and "\x00" in op.key:
                raise InvalidKey(self.kind, op.key, "a key cannot hold \\u0000 (PostgreSQL's text cannot)")
        results: list[Result] = [None] * len(ops)
        gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
        if gets:
            self._get(gets, results)
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op)
        puts = [op for op in ops if isinstance(op, PutOp)]
        if puts:
            self._put(puts)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread (the store's pool is a synchronous one)."""
        return await asyncio.to_thread(self.batch, list(ops))

    # -- reads -------------------------------------------------------------------------

    @property
    def _omit_expired(self) -> bool:
        return bool(self.ttl_config and self.ttl_config.get("omit_expired"))

    def _live(self) -> sql.Composable:
        return sql.SQL("AND (t.expires_at IS NULL OR t.expires_at > now())" if self._omit_expired else "")

    def _refresh(self, source: str) -> sql.Composable:
        """A CTE extending the expiry of the rows named by ``source`` (a CTE with ``name``)."""
        live = "AND t.expires_at > now()" if self._omit_expired else ""
        return sql.SQL(
            "refreshed AS (UPDATE {ttl} t SET expires_at = now() + make_interval(secs => t.ttl_minutes * 60)"
            " FROM {source} r WHERE t.name = r.name AND r.refresh {live})"
        ).format(ttl=self._tables["ttl"], source=sql.Identifier(source), live=sql.SQL(live))

    def _get(self, gets: list[tuple[int, GetOp]], results: list[Result]) -> None:
        names = [item_name(op.namespace, op.key) for _, op in gets]
        query = sql.SQL(
            "WITH wanted AS (SELECT * FROM unnest(%s::text[], %s::bool[]) AS w(name, refresh)), {refresh}"
            " SELECT d.name, d.data, d.created_at, d.updated_at"
            " FROM {view} d JOIN wanted w ON w.name = d.name"
            " LEFT JOIN {ttl} t ON t.name = d.name WHERE d.kind = %s {live}"
        ).format(
            refresh=self._refresh("wanted"),
            view=self._tables["view"],
            ttl=self._tables["ttl"],
            live=self._live(),
        )
        with self.docstore.pool.connection() as conn:
            rows = conn.execute(query, (names, [op.refresh_ttl for _, op in gets], self.kind)).fetchall()
        found = {row[0]: row for row in rows}
        for (i, _), name in zip(gets, names, strict=True):
            row = found.get(name)
            results[i] = None if row is None else _item(Item, row)

    def _search(self, op: SearchOp) -> list[SearchItem]:
        conditions, params = compile_filter(op.filter)
        start = prefix_text(tuple(op.namespace_prefix))
        if start is not None:
            conditions.append("starts_with(d.name, %s)")
            params.append(start)
        where = sql.SQL("").join(sql.SQL(" AND " + c) for c in conditions)
        common = {
            "view": self._tables["view"],
            "ttl": self._tables["ttl"],
            "where": where,
            "live": self._live(),
        }
        if op.query and self.index_config is not None and self.embeddings is not None:
            vector = self.embeddings.embed_query(op.query)
            distance = self.index_config.get("distance_type", "cosine")
            found = sql.SQL(
                "SELECT d.name, d.data, d.created_at, d.updated_at, {score} AS score, %s AS refresh"
                " FROM (SELECT v.name, v.version, min(v.embedding {op} %s::{vtype}) AS dist FROM {vectors} v"
                "       {prefix} GROUP BY v.name, v.version) s"
                " JOIN {view} d ON d.kind = %s AND d.name = s.name AND d.version = s.version"
                " LEFT JOIN {ttl} t ON t.name = d.name WHERE true {where} {live}"
                " ORDER BY s.dist, d.name LIMIT %s OFFSET %s"
            ).format(
                score=sql.SQL(_SCORE[distance]),
                op=sql.SQL(_DISTANCE[distance]),
                vtype=sql.SQL(self._vector_type),
                vectors=self._tables["vectors"],
                prefix=sql.SQL("WHERE starts_with(v.name, %s)" if start is not None else ""),
                **common,
            )
            args: list[Any] = [
                op.refresh_ttl,
                _vector_text(vector),
                *([start] if start is not None else []),
                self.kind,
                *params,
                op.limit,
                op.offset,
            ]
            order = "score DESC, name"
        else:
            found = sql.SQL(
                "SELECT d.name, d.data, d.created_at, d.updated_at, NULL::float8 AS score, %s AS refresh"
                " FROM {view} d LEFT JOIN {ttl} t ON t.name = d.name WHERE d.kind = %s {where} {live}"
                " ORDER BY d.updated_at DESC, d.name LIMIT %s OFFSET %s"
            ).format(**common)
            args = [op.refresh_ttl, self.kind, *params, op.limit, op.offset]
            order = "updated_at DESC, name"
        query = sql.SQL("WITH found AS ({found}), {refresh} SELECT * FROM found ORDER BY {order}").format(
            found=found, refresh=self._refresh("found"), order=sql.SQL(order)
        )
        with self.docstore.pool.connection() as conn:
            rows = conn.execute(query, args).fetchall()
        return [_item(SearchItem, row, score=row[4]) for row in rows]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        query = sql.SQL(
            "SELECT DISTINCT split_part(d.name, '..', 1) FROM {view} d LEFT JOIN {ttl} t ON t.name = d.name"
            " WHERE d.kind = %s {live}"
        ).format(view=self._tables["view"], ttl=self._tables["ttl"], live=self._live())
        with self.docstore.pool.connection() as conn:
            rows = conn.execute(query, (self.kind,)).fetchall()
        found = (tuple(row[0].split(".")) for row in rows if row[0])
        return select_namespaces(found, op.match_conditions, op.max_depth, op.limit, op.offset)

    # -- writes ------------------------------------------------------------------------

    def _put(self, puts: list[PutOp]) -> None:
        latest: dict[str, PutOp] = {}
        for op in puts:  # the last write to an item wins, as in LangGraph's stores
            latest[item_name(op.namespace, op.key)] = op
        values = {name: self._validated(name, op) for name, op in latest.items() if op.value is not None}
        texts = self._texts(latest)
        vectors = self._embed(texts)
        gone = [name for name, op in latest.items() if op.value is None]
        versions: dict[str, int] = {}
        # One transaction: the items' versions, their expiry and their embeddings commit
        # together, or none of them does.
        with self.docstore.transaction() as conn:
            if values:
                versions = {doc.name: doc.version for doc in self.docstore.put_many(self.kind, values)}
            for name in gone:
                try:
                    with self.docstore.transaction():
                        self.docstore.delete(self.kind, name)
                except DocumentNotFound:
                    pass
            expiring = [
                (n, op.ttl) for n, op in latest.items() if op.value is not None and op.ttl is not None
            ]
            if expiring:
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (name, ttl_minutes, expires_at)"
                        " SELECT n, m, now() + make_interval(secs => m * 60)"
                        " FROM unnest(%s::text[], %s::float8[]) AS u(n, m)"
                        " ON CONFLICT (name) DO UPDATE SET ttl_minutes = EXCLUDED.ttl_minutes,"
                        " expires_at = EXCLUDED.expires_at"
                    ).format(self._tables["ttl"]),
                    ([n for n, _ in expiring], [float(m) for _, m in expiring]),
                )
            lasting = [n for n, op in latest.items() if op.value is None or op.ttl is None]
            if lasting:
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE name = ANY(%s)").format(self._tables["ttl"]), (lasting,)
                )
            if self.index_config is not None:
                conn.execute(
                    sql.SQL(
                        # Rows of other versions than the one just written go.
                        "DELETE FROM {} v WHERE v.name = ANY(%s)"
                        " AND v.version <> coalesce((%s::jsonb ->> v.name)::bigint, -1)"
                    ).format(self._tables["vectors"]),
                    (list(latest), _json_map({n: versions[n] for n, _ in texts if n in versions})),
                )
                rows = [
                    (name, versions[name], field, _vector_text(vector))
                    for (name, field), vector in vectors.items()
                    if name in versions
                ]
                if rows:
                    with conn.cursor() as cur:
                        cur.executemany(
                            sql.SQL(
                                "INSERT INTO {} (name, version, field, embedding) VALUES (%s, %s, %s, %s::{})"
                                " ON CONFLICT (name, version, field)"
                                " DO UPDATE SET embedding = EXCLUDED.embedding"
                            ).format(self._tables["vectors"], sql.SQL(self._vector_type)),
                            rows,
                        )

    def _validated(self, name: str, op: PutOp) -> dict[str, Any]:
        value = dict(cast(Mapping[str, Any], op.value))
        ns = tuple(op.namespace)
        prefix = max((p for p in self._models if ns[: len(p)] == p), key=len, default=None)
        if prefix is None:
            return value
        adapter = self._models[prefix]
        try:
            dumped = adapter.dump_python(adapter.validate_python(value), mode="json")
        except ValidationError as exc:
            raise DocumentInvalid(self.kind, name, None, exc.errors(), f"model for {prefix!r}") from None
        if not isinstance(dumped, dict):
            raise DocumentInvalid(
                self.kind,
                name,
                None,
                [{"loc": (), "msg": "the model's dump is not an object", "type": "dict_type"}],
            )
        return dumped

    def _texts(self, latest: dict[str, PutOp]) -> dict[tuple[str, str], str]:
        """(name, field) -> the text to embed, for the puts that are indexed."""
        if self.index_config is None:
            return {}
        out: dict[tuple[str, str], str] = {}
        for name, op in latest.items():
            if op.value is None or op.index is False:
                continue
            paths = (
                self.index_config["__tokenized_fields"]
                if op.index is None
                else [(p, tokenize_path(p)) for p in op.index]
            )
            for path, tokens in paths:
                found = get_text_at_path(op.value, tokens)
                for i, text in enumerate(found):
                    out[(name, f"{path}.{i}" if len(found) > 1 else path)] = text
        return out

    def _embed(self, texts: dict[tuple[str, str], str]) -> dict[tuple[str, str], list[float]]:
        if not texts or self.embeddings is None:
            return {}
        keys = list(texts)
        vectors = self.embeddings.embed_documents([texts[k] for k in keys])
        return dict(zip(keys, vectors, strict=True))

    @property
    def _vector_type(self) -> str:
        config = self.index_config or {}
        chosen = str(config.get("vector_type", "vector"))
        return chosen

    # -- expiry --------------------------------------------------------------------------

    def sweep_ttl(self) -> int:
        """Delete the expired items (each a tombstone version, as ``delete`` writes);
        returns how many."""
        with self.docstore.pool.connection() as conn:
            rows = conn.execute(
                sql.SQL("DELETE FROM {} WHERE expires_at <= now() RETURNING name").format(self._tables["ttl"])
            ).fetchall()
        swept = 0
        for (name,) in rows:
            with contextlib.suppress(DocumentNotFound):
                self.docstore.delete(self.kind, name)
                swept += 1
        return swept

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> None:
        """Sweep every ``sweep_interval_minutes`` (else the TTL config's, else 5) in a
        daemon thread, until :meth:`stop_ttl_sweeper`."""
        if self._sweeper is not None and self._sweeper.is_alive():
            return
        minutes = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes") or 5
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(float(minutes) * 60):
                self.sweep_ttl()

        self._sweeper = threading.Thread(target=loop, name="docstore-langgraph-ttl", daemon=True)
        self._sweeper.start()

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; whether it stopped within ``timeout``."""
        self._stop.set()
        if self._sweeper is None:
            return True
        self._sweeper.join(timeout)
        return not self._sweeper.is_alive()


def _index(index: VectorIndexConfig | IndexConfig) -> tuple[dict[str, Any], Embeddings]:
    config: dict[str, Any] = dict(index)
    distance = config.get("distance_type", "cosine")
    if distance not in _DISTANCE:
        raise ValueError(f"distance_type {distance!r}: one of {', '.join(_DISTANCE)}")
    if config.get("vector_type", "vector") not in ("vector", "halfvec"):
        raise ValueError(f"vector_type {config['vector_type']!r}: vector or halfvec")
    if not isinstance(config.get("dims"), int) or config["dims"] < 1:
        raise ValueError(f"index dims must be a positive int, not {config.get('dims')!r}")
    fields = config.get("fields") or ["$"]
    if isinstance(fields, str):
        fields = [fields]
    config["__tokenized_fields"] = [(p, "$" if p == "$" else tokenize_path(p)) for p in fields]
    return config, ensure_embeddings(config.get("embed"))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _vector_text(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _json_map(values: dict[str, int]) -> str:
    return orjson.dumps(values).decode()


def _item(cls: type[Item], row: Sequence[Any], score: float | None = None) -> Any:
    namespace, key = split_name(row[0])
    created: datetime = row[2]
    updated: datetime = row[3]
    if cls is SearchItem:
        return SearchItem(namespace, key, row[1], created, updated, score)
    return Item(value=row[1], key=key, namespace=namespace, created_at=created, updated_at=updated)
