"""What every family of plans shares: the encoding of values, rows as Docs, the reasons
a write did not happen, schema set-up, and the translation of database errors."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import orjson
import psycopg
from psycopg import errors as pge
from psycopg import sql
from pydantic import BaseModel, TypeAdapter, ValidationError

from . import _sql as q
from ._codec import JsonProblem, dump, writes_plain
from ._plan import MAX_VERSION, Op, Plan, Stmt
from ._rows import Head, NamedHead, Prior
from .doc import Doc
from .errors import (
    Contention,
    DatabaseUnavailable,
    DocStoreError,
    DocumentInvalid,
    DocumentNotFound,
    IdempotencyKeyReused,
    InvalidFilter,
    InvalidKey,
    KeyedWriteLost,
    KindMismatch,
    LimitExceeded,
    OutcomeUnknown,
    PermissionDenied,
    SchemaMissing,
    VersionConflict,
)
from .kinds import ANY_DICT, BaseKind, Registry, check_key

__all__ = ["MAX_KEY_LENGTH", "CoreBase", "IndexOn", "index_name", "literal", "over_a_limit"]

MAX_KEY_LENGTH = 200
"""The longest idempotency key (it is a primary-key entry of `versions`)."""

IndexOn = Literal["data", "updated_at"]

_INDEXES = {"data": (q.INDEX_DATA, "data_idx"), "updated_at": (q.INDEX_UPDATED, "updated_idx")}


def literal(kind: str) -> str:
    """A (checked) kind as an SQL string literal."""
    return sql.Literal(kind).as_string(None)


def index_name(kind: str, suffix: str) -> str:
    """``documents_<kind>_<suffix>``, shortened with a hash of the kind past 63 bytes
    (PostgreSQL would cut it, and two long kinds could then share one name)."""
    name = f"documents_{kind}_{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(kind.encode()).hexdigest()[:10]
    return f"documents_{kind[: 63 - len(suffix) - 22]}_{digest}_{suffix}"


def _where(index: int | None) -> str:
    """What an invalid value was, for DocumentInvalid: an item's index, or the write."""
    return f"item {index}" if index is not None else "write"


class CoreBase:
    """Plans' common ground, bound to a registry and a schema."""

    def __init__(self, registry: Registry, schema: str, author: str | None = None) -> None:
        self.kinds = registry
        self.sql = q.Statements(schema)
        self.author = author
        self._meta_defaults: dict[str, bytes | None] = {}
        # write_sql's statements by (template, notify, lazy, parts).
        self._writes: dict[tuple[Any, ...], str] = {}
        # put's statement by (notify, durability, expectation, keyed): a few at most.
        self._put_sqls: dict[tuple[Any, ...], str] = {}
        self._append_sqls: dict[tuple[Any, ...], str] = {}  # the same for appends
        # By adapter, not kind name: a kind registered again gets its new type's checks.
        self._meta_fields: dict[TypeAdapter[Any], dict[str, Any] | Literal[False]] = {}
        # By adapter too: whether orjson may write its values (docstore._codec.writes_plain).
        self._plain: dict[TypeAdapter[Any], bool] = {}

    # --- encoding ----------------------------------------------------------------------

    def encode(
        self, spec: BaseKind[Any], name: str, value: Any, index: int | None = None
    ) -> tuple[Any, bytes]:
        """Validate ``value`` against the kind, then dump it to JSON bytes once."""
        adapter = spec.adapter
        try:
            # The core validator: TypeAdapter's own method is a Python layer over it.
            validated = adapter.validator.validate_python(value)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if index is not None:
                errors = [{**e, "loc": (index, *e["loc"])} for e in errors]
            raise DocumentInvalid(spec.name, name, None, errors, _where(index)) from None
        plain = self._plain.get(adapter)
        if plain is None:
            plain = self._plain[adapter] = writes_plain(adapter)
        data = dump(adapter, validated, plain)
        if isinstance(data, JsonProblem):
            err = data.as_error()
            if index is not None:
                err["loc"] = (index, *err["loc"])
            raise DocumentInvalid(spec.name, name, None, [err], _where(index))
        return validated, data

    def encode_meta(self, spec: BaseKind[Any], name: str, meta: Any, partial: bool = False) -> bytes:
        """Validate and dump a log's metadata (``partial``: some keys of it, as a dict)."""
        adapter = ANY_DICT if partial or spec.meta is None else spec.meta
        try:
            validated = adapter.validate_python(meta)
        except ValidationError as exc:
            raise DocumentInvalid(spec.name, name, None, exc.errors(include_url=False), "meta") from None
        data = dump(adapter, validated)
        if isinstance(data, JsonProblem):
            raise DocumentInvalid(spec.name, name, None, [data.as_error()], "meta")
        return data

    def check_meta_update(self, spec: BaseKind[Any], name: str, patch: Mapping[str, Any]) -> bool:
        """Validate the keys a ``meta_update`` sets against the kind's metadata type.

        For a model whose checks are all per field (no validators, no aliases), each key
        checked against its field is the merged metadata checked, with no read. Returns
        True when that cannot be known here: the merge must then be validated against the
        stored metadata (:meth:`check_merged_meta`), under a lock.
        """
        if spec.meta is None:
            return False
        fields = self._meta_fields.get(spec.meta)
        if fields is None:
            fields = self._meta_fields[spec.meta] = _per_field(spec.meta)
        if fields is False:
            return True
        errors: list[Any] = []
        for key, value in patch.items():
            adapter = fields.get(key)
            if adapter is None:
                if fields.get("") is _FORBID:
                    errors.append({"loc": (key,), "msg": "Extra inputs are not permitted"})
                continue
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                errors.extend({**e, "loc": (key, *e["loc"])} for e in exc.errors(include_url=False))
        if errors:
            raise DocumentInvalid(spec.name, name, None, errors, "meta_update")
        return False

    def check_merged_meta(
        self, spec: BaseKind[Any], name: str, stored: str | bytes | None, patch: Mapping[str, Any]
    ) -> None:
        """Validate the stored metadata with ``patch`` merged in, as the write will leave it."""
        if stored is None or spec.meta is None:
            return
        merged = {**orjson.loads(stored), **patch}
        try:
            spec.meta.validate_python(merged)
        except ValidationError as exc:
            raise DocumentInvalid(
                spec.name, name, None, exc.errors(include_url=False), "meta_update"
            ) from None

    def meta_default(self, spec: BaseKind[Any]) -> bytes | None:
        """The metadata a new log gets when none is given; None when its type needs some."""
        if spec.name not in self._meta_defaults:
            try:
                self._meta_defaults[spec.name] = self.encode_meta(spec, "", {})
            except DocumentInvalid:
                self._meta_defaults[spec.name] = None
        return self._meta_defaults[spec.name]

    def write_sql(self, spec: BaseKind[Any], template: str, **parts: str) -> str:
        """A write statement bound for ``spec``: with the NOTIFY of its change if the kind
        notifies (docstore._sql.NOTE), its commit made asynchronous if the kind's
        durability is "async" (docstore._sql.LAZY)."""
        lazy = spec.durability == "async"
        key = (template, spec.notify, lazy, *parts.items())
        text = self._writes.get(key)
        if text is None:
            note = (q.NOTE if spec.notify else "") + (q.LAZY if lazy else "")
            join = (q.NOTE_JOIN if spec.notify else "") + (q.LAZY_JOIN if lazy else "")
            text = self.sql(template, note=note, note_join=join, **parts)
            if len(self._writes) < 1024:
                self._writes[key] = text
        return text

    def lazy(self, kind: str) -> bool:
        """Whether ``kind`` is registered with durability "async"."""
        spec = self.kinds.get(kind) if kind in self.kinds else None
        return spec is not None and spec.durability == "async"

    # --- rows -> values ----------------------------------------------------------------

    def head_doc(self, spec: BaseKind[Any], name: str, head: Head | NamedHead) -> Doc[Any]:
        """A head as a Doc."""
        if head.mode == "l":
            return Doc(
                spec.name,
                name,
                head.version,
                spec.parse_meta(name, head.data),
                head.schema_version,
                head.created_at,
                head.updated_at,
                head.deleted,
                head.live_count,
            )
        return Doc(
            spec.name,
            name,
            head.version,
            spec.parse(name, head.version, head.data, head.schema_version),
            head.schema_version,
            head.created_at,
            head.updated_at,
            head.deleted,
        )

    def mode_of(self, spec: BaseKind[Any], name: str, mode: str) -> None:
        """Refuse a stored document whose mode disagrees with its kind's registration."""
        stored = "log" if mode == "l" else "snapshot"
        if stored != spec.mode:
            raise KindMismatch(
                f"{spec.name} {name!r} is stored as a {stored} document, but "
                f"kind {spec.name!r} is registered as {spec.mode}"
            )

    def _unwritten(self, spec: BaseKind[Any], name: str, expected: int | None) -> Plan[DocStoreError]:
        """Why a write that needed an existing, live document wrote nothing."""
        heads = yield Stmt(self.sql(q.GET_HEAD), {"kind": spec.name, "name": name})
        if not heads:
            return (
                VersionConflict(spec.name, name, expected, 0)
                if expected
                else DocumentNotFound(spec.name, name)
            )
        head = Head._make(heads[0])
        self.mode_of(spec, name, head.mode)
        if head.deleted:
            return (
                VersionConflict(spec.name, name, expected, head.version)
                if expected
                else DocumentNotFound(spec.name, name, reason="deleted")
            )
        return VersionConflict(spec.name, name, expected or 0, head.version)

    # --- idempotency keys --------------------------------------------------------------

    def key_params(
        self, key: str | None, op: str, kind: str, name: str, payload: Sequence[bytes | None]
    ) -> dict[str, Any]:
        """The parameters a keyed write adds (none without a key): the key, and a digest
        of the request, which a retry must match."""
        if key is None:
            return {}
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or "\x00" in key:
            raise ValueError(
                f"idempotency_key must be a str of 1 to {MAX_KEY_LENGTH} "
                f"characters without \\u0000, not {key!r:.100}"
            )
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("idempotency_key must be valid UTF-8 (it has a lone surrogate)") from None
        digest = hashlib.sha256()
        for part in (op.encode(), kind.encode(), name.encode("utf-8"), *payload):
            digest.update(b"-" if part is None else len(part).to_bytes(8, "big") + part)
        return {"idem_key": key, "idem_request": digest.hexdigest()}

    def prior_write(self, keyed: Mapping[str, Any], op: str, kind: str, name: str) -> Plan[Prior | None]:
        """What the write holding this key returned, or None when no write holds it. A key
        held by another request raises."""
        rows = yield Stmt(self.sql(q.KEY_LOOKUP), keyed)
        if not rows:
            return None
        prior_op, prior_kind, prior_name, version, request, created, written, wrote = rows[0]
        if (prior_op, prior_kind, prior_name, request) != (op, kind, name, keyed["idem_request"]):
            same = (prior_op, prior_kind, prior_name) == (op, kind, name)
            raise IdempotencyKeyReused(
                keyed["idem_key"],
                kind,
                name,
                (
                    f"{prior_op} of {prior_kind} {prior_name!r} version {version}"
                    + (" with other data" if same else "")
                ),
            )
        return Prior(int(version), created, written, wrote)

    # --- schema ------------------------------------------------------------------------

    def create_index(self, kind: str, on: IndexOn) -> Op[str]:
        """Create (if missing) a partial index of ``kind``'s heads; returns its name."""
        check_key(kind)
        if on not in _INDEXES:
            raise ValueError(f"create_index: on= is 'data' or 'updated_at', not {on!r}")
        template, suffix = _INDEXES[on]
        name = index_name(kind, suffix)
        query = self.sql(template, kind=literal(kind), name=sql.Identifier(name).as_string(None))

        def plan() -> Plan[str]:
            # Under the schema's lock: two CREATE INDEX IF NOT EXISTS of one name at once
            # can still collide in the catalog.
            yield Stmt(q.SCHEMA_LOCK, {"key": "docstore:" + self.sql.schema})
            yield Stmt(query)
            return name

        return Op(plan, kind, atomic=True)

    # --- errors ------------------------------------------------------------------------

    def failure(
        self, exc: psycopg.Error, op: Op[Any], attempt: int, in_transaction: bool, sent: bool = True
    ) -> DocStoreError | None:
        """The error to raise after a failed attempt, or None to run the operation again.

        ``sent``: the operation had a connection, so a write may have reached the server.
        Inside the caller's transaction nothing is retried: the transaction is lost (it
        never committed) and only the caller can start it over.
        """
        if in_transaction:
            if op.keyed and isinstance(exc, pge.UniqueViolation):
                return KeyedWriteLost(
                    f"{op.kind} {op.name!r}: another write with the same idempotency_key "
                    "committed first, so this transaction is rolled back; run it again "
                    "(the key then returns that write)"
                )
            return self.translate(exc, op)
        racing = isinstance(exc, pge.DeadlockDetected | pge.SerializationFailure) or (
            # Another attempt with the same key committed first: this one rolled back, and
            # running it again finds the key.
            op.keyed and isinstance(exc, pge.UniqueViolation)
        )
        if racing:
            # The whole statement rolled back: running it again is safe.
            if attempt < 3:
                return None
            where = f"{op.kind} {op.name!r}" if op.name is not None else f"kind {op.kind!r}"
            return Contention(
                f"{where}: kept meeting other transactions ({_first_line(exc)}) through "
                f"{attempt} attempts, each rolled back; nothing of this call was kept"
            )
        # A read, or a keyed write, can run again on a fresh connection. An unkeyed
        # write's outcome is unknown once sent (the server may have committed before the
        # connection broke), and a statement timeout would only strike again.
        retry = (
            isinstance(exc, psycopg.OperationalError)
            and not over_a_limit(exc)
            and (op.read_only or op.keyed)
            and attempt < 2
            and not isinstance(exc, pge.QueryCanceled)
        )
        if retry:
            return None
        # A server that reports an error for the statement (a terminated backend says
        # so) rolled it back; only a connection that died in silence leaves it unknown.
        return self.translate(exc, op, unknown=sent and not op.read_only and exc.sqlstate is None)

    def translate(
        self, exc: psycopg.Error, op: Op[Any] | None = None, unknown: bool = False
    ) -> DocStoreError:
        """A psycopg error as the docstore error that says what to do about it."""
        kind, name = (op.kind, op.name) if op is not None else ("", None)
        where = f"{kind} {name!r}: " if name is not None else (f"kind {kind!r}: " if kind else "")
        schema = self.sql.schema
        if isinstance(exc, pge.UndefinedTable | pge.InvalidSchemaName | pge.UndefinedObject):
            return SchemaMissing(
                f"{where}docstore's tables are missing from schema {schema!r} "
                f"in this database: run store.init_schema() (or `docstore init`)"
            )
        if isinstance(exc, pge.InsufficientPrivilege):
            return PermissionDenied(
                f"{where}the database role lacks a privilege this needs "
                f"(schema {schema!r}): {_first_line(exc)}"
            )
        if isinstance(exc, pge.QueryCanceled):
            return DatabaseUnavailable(f"{where}statement cancelled: {_first_line(exc)}")
        if isinstance(exc, pge.SyntaxError) and "jsonpath" in str(exc):
            # Only a raw $jsonpath filter carries JSONPath text the caller wrote.
            return InvalidFilter(
                f"{where}the $jsonpath filter is not valid JSONPath: {_first_line(exc)}", "$jsonpath"
            )
        if isinstance(exc, pge.CheckViolation | pge.StringDataRightTruncation):
            return InvalidKey(kind, name, _first_line(exc))
        if (
            isinstance(exc, pge.NumericValueOutOfRange)
            and op is not None
            and not op.read_only
            and "bigint" in str(exc)
        ):
            # Versions are the one number a write adds to (the caller's numbers are
            # checked before any SQL): a document imported at the last version.
            return LimitExceeded(
                f"{where}a version would pass 2**63-1 ({MAX_VERSION:,}), the largest "
                f"number PostgreSQL's bigint holds ({_first_line(exc)}); nothing was "
                "written. A document at its last version (an import can restore one) "
                "takes no more writes: purge it and write it anew"
            )
        if over_a_limit(exc):
            # psycopg files PostgreSQL's class 54 under OperationalError, but the same
            # statement would fail again: this is no connection failure to retry.
            return LimitExceeded(
                f"{where}over a limit of PostgreSQL ({_first_line(exc)}); nothing of this "
                "call was kept. It is no connection failure: run again as it is, it would "
                "meet the same limit"
            )
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            if unknown:
                return OutcomeUnknown(
                    f"{where}the database connection broke after the write was sent "
                    f"({_first_line(exc)}): it may or may not have been committed, the "
                    "outcome is unknown. Retry it with the same idempotency_key= (a keyed "
                    "write lands at most once), or re-read before writing again"
                )
            return DatabaseUnavailable(
                f"{where}the database connection failed: "
                f"{_first_line(exc)}; nothing of this call was kept, "
                "it is safe to retry"
            )
        return DocStoreError(f"{where}{type(exc).__name__}: {_first_line(exc)}")


_FORBID: Any = object()


def _model_of(adapter: TypeAdapter[Any]) -> type[BaseModel] | None:
    """The model an adapter validates, read from its public core schema (a recursive
    model's sits among its definitions)."""
    schema: dict[str, Any] = dict(adapter.core_schema)
    if schema["type"] == "definitions":
        ref = schema["schema"].get("schema_ref")
        schema = next((d for d in schema["definitions"] if d.get("ref") == ref), schema["schema"])
    model = schema.get("cls") if schema["type"] == "model" else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _per_field(adapter: TypeAdapter[Any]) -> dict[str, Any] | Literal[False]:
    """A validator per stored key of a metadata model whose checks are all per field
    (``""`` marks extra="forbid"); False when the whole must be validated."""
    model = _model_of(adapter)
    if model is None:
        return False
    decorators = model.__pydantic_decorators__
    if (
        decorators.field_validators
        or decorators.model_validators
        or decorators.root_validators
        or decorators.validators
    ):
        return False
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        if info.alias or info.validation_alias:
            return False
        fields[field_name] = TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]
    if model.model_config.get("extra") == "forbid":
        fields[""] = _FORBID
    return fields


def over_a_limit(exc: psycopg.Error) -> bool:
    """A statement over one of PostgreSQL's limits (SQLSTATE class 54: a jsonb value past
    256 MiB, an array too large, a statement too complex, the server refusing writes
    until a VACUUM prevents wraparound)."""
    return (exc.sqlstate or "").startswith("54")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
