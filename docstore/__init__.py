"""docstore: versioned, Pydantic-validated JSONB documents and logs in PostgreSQL.

Two tables hold everything: ``documents`` (each document as it stands now) and
``versions`` (every versioned record ever written). Configs are *snapshot* kinds, where
each write is a whole new version; conversations are *log* kinds, where version N is the
N-th item appended. See docs/index.md.
"""

from ._base import IndexOn
from ._ddl import Migration, MigrationStep, ddl_version
from ._handles import Documents, Log
from ._handles_async import AsyncDocuments, AsyncLog
from ._plan import OnInvalid
from .aio import AsyncDocStore
from .change import Change
from .doc import Doc, Entry, Imported, Items, LogHead
from .errors import (
    ChangesPruned,
    Contention,
    CursorAheadOfServer,
    DatabaseUnavailable,
    DDLVersionMismatch,
    DocStoreError,
    DocumentInvalid,
    DocumentNotFound,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidFilter,
    InvalidKey,
    KeyedWriteLost,
    KindMismatch,
    LimitExceeded,
    OutcomeUnknown,
    PermissionDenied,
    SchemaMissing,
    TransactionEnded,
    UnknownKind,
    VersionConflict,
)
from .kinds import BaseKind, Durability, Kind, KindRef, LogKind, Mode, Register, Registry, Upgrader
from .store import DocStore

__all__ = [
    "AsyncDocStore",
    "AsyncDocuments",
    "AsyncLog",
    "BaseKind",
    "Change",
    "ChangesPruned",
    "Contention",
    "CursorAheadOfServer",
    "DDLVersionMismatch",
    "DatabaseUnavailable",
    "Doc",
    "DocStore",
    "DocStoreError",
    "DocumentInvalid",
    "DocumentNotFound",
    "Documents",
    "Durability",
    "Entry",
    "IdempotencyKeyReused",
    "Imported",
    "IndexOn",
    "InvalidCursor",
    "InvalidFilter",
    "InvalidKey",
    "Items",
    "KeyedWriteLost",
    "Kind",
    "KindMismatch",
    "KindRef",
    "LimitExceeded",
    "Log",
    "LogHead",
    "LogKind",
    "Migration",
    "MigrationStep",
    "Mode",
    "OnInvalid",
    "OutcomeUnknown",
    "PermissionDenied",
    "Register",
    "Registry",
    "SchemaMissing",
    "TransactionEnded",
    "UnknownKind",
    "Upgrader",
    "VersionConflict",
    "ddl_version",
]

__version__ = "0.1.0"
