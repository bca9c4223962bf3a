"""docstore: versioned, Pydantic-validated JSONB documents and logs in PostgreSQL.

Two tables hold everything: ``documents`` (each document as it stands now) and
``versions`` (every versioned record ever written). Configs are *snapshot* kinds, where
each write is a whole new version; conversations are *log* kinds, where version N is the
N-th item appended. See docs/index.md.
"""

from ._base import IndexOn
from ._ddl import Migration, MigrationStep
from ._plan import OnInvalid
from .aio import AsyncDocStore
from .change import Change
from .doc import Doc, Entry
from .errors import (
    ChangesPruned,
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
    KindMismatch,
    OutcomeUnknown,
    PermissionDenied,
    SchemaMissing,
    UnknownKind,
    VersionConflict,
)
from .kinds import Durability, Kind, KindRef, LogKind, Mode, Registry, Upgrader
from .store import DocStore

__all__ = [
    "AsyncDocStore",
    "Change",
    "ChangesPruned",
    "CursorAheadOfServer",
    "DDLVersionMismatch",
    "DatabaseUnavailable",
    "Doc",
    "DocStore",
    "DocStoreError",
    "DocumentInvalid",
    "DocumentNotFound",
    "Durability",
    "Entry",
    "IdempotencyKeyReused",
    "IndexOn",
    "InvalidCursor",
    "InvalidFilter",
    "InvalidKey",
    "Kind",
    "KindMismatch",
    "KindRef",
    "LogKind",
    "Migration",
    "MigrationStep",
    "Mode",
    "OnInvalid",
    "OutcomeUnknown",
    "PermissionDenied",
    "Registry",
    "SchemaMissing",
    "UnknownKind",
    "Upgrader",
    "VersionConflict",
]

__version__ = "0.1.0"
