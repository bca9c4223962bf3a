"""The registry of kinds: what each kind's documents are and how they evolve.

A kind maps to a Pydantic ``TypeAdapter`` (so a BaseModel, a dataclass, a TypedDict or a
discriminated union all work), a mode, the current ``schema_version`` and the upgrade
functions that bring older stored documents up to it on read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar, overload

import orjson
from pydantic import TypeAdapter, ValidationError

from .errors import DocumentInvalid, InvalidKey, KindMismatch, UnknownKind

__all__ = [
    "BaseKind",
    "Durability",
    "Kind",
    "KindRef",
    "LogKind",
    "Mode",
    "Register",
    "Registry",
    "Upgrader",
    "check_key",
]

T = TypeVar("T")
M = TypeVar("M")
# Handles are read-only, so covariant: a list of several kinds' handles is a list of
# Kind[object], which every method taking handles of any kind accepts.
T_co = TypeVar("T_co", covariant=True)
M_co = TypeVar("M_co", covariant=True)
K = TypeVar("K", bound="BaseKind[Any]")

Mode = Literal["snapshot", "log"]
Durability = Literal["durable", "async"]
Upgrader = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns a document stored at schema version N (a dict) into its shape at N + 1."""

_KIND_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
MAX_NAME_LENGTH = 512


# Kinds found good already: a set lookup, where the pattern costs every call a match.
_GOOD_KINDS: set[str] = set()


def check_key(kind: str, name: str | None = None) -> None:
    """Refuse, before any SQL runs, a kind or name the tables' CHECKs would refuse."""
    if type(kind) is str and kind in _GOOD_KINDS:
        if name is None or (
            type(name) is str and name.isascii() and 0 < len(name) <= MAX_NAME_LENGTH and "\x00" not in name
        ):
            return
    elif not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise InvalidKey(
            str(kind), None, "a kind is 1 to 63 characters of a-z, 0-9 and _, starting with a letter"
        )
    elif len(_GOOD_KINDS) < 10_000:
        _GOOD_KINDS.add(kind)
    if name is None:
        return
    if not isinstance(name, str):
        raise InvalidKey(kind, repr(name), f"a name must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidKey(kind, name, "a name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidKey(
            kind, name, f"a name is at most {MAX_NAME_LENGTH} characters, this one has {len(name)}"
        )
    if "\x00" in name:
        raise InvalidKey(kind, name, "a name cannot contain \\u0000")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey(kind, name, "a name must be valid UTF-8 (it has a lone surrogate)") from None


@dataclass(frozen=True, slots=True)
class BaseKind(Generic[T_co]):
    """One registered kind, of either mode: what :class:`Kind` (snapshot) and
    :class:`LogKind` have in common. ``T_co``: its documents' (or items') type.
    """

    name: str
    adapter: TypeAdapter[T_co]
    mode: Mode = "snapshot"
    schema_version: int = 1
    upgraders: Mapping[int, Upgrader] = field(default_factory=dict)
    meta: TypeAdapter[Any] | None = None
    # Whether its writes NOTIFY the change feed's readers (docs/changes.md).
    notify: bool = True
    # "async": its writes commit without waiting for the WAL flush (docs/performance.md).
    durability: Durability = "durable"

    def parse(
        self,
        doc_name: str,
        version: int | None,
        raw: bytes | str,
        schema_version: int,
        adapter: TypeAdapter[Any] | None = None,
    ) -> Any:
        """Validate stored JSON (with ``adapter`` in place of the kind's, if given),
        upgrading it first when it was written by an older schema."""
        if adapter is None:
            adapter = self.adapter
        try:
            if schema_version == self.schema_version:
                # The core validator: TypeAdapter's own method is a Python layer over it.
                return adapter.validator.validate_json(raw)
            return adapter.validate_python(self.upgrade(doc_name, version, raw, schema_version))
        except ValidationError as exc:
            raise DocumentInvalid(
                self.name, doc_name, version, exc.errors(include_url=False), "stored data"
            ) from None

    def upgrade(self, doc_name: str, version: int | None, raw: bytes | str, schema_version: int) -> Any:
        """Apply the upgraders from ``schema_version`` up to the current one (dict -> dict)."""
        if schema_version > self.schema_version:
            raise DocumentInvalid(
                self.name,
                doc_name,
                version,
                [
                    {
                        "loc": (),
                        "msg": f"written by schema_version {schema_version}, newer than this "
                        f"kind's {self.schema_version}: upgrade the code that reads it",
                    }
                ],
                "stored data",
            )
        data = orjson.loads(raw)
        for step in range(schema_version, self.schema_version):
            data = self.upgraders[step](data)
        return data

    def parse_meta(self, doc_name: str, raw: bytes | str) -> Any:
        """Validate a log head's metadata."""
        adapter = self.meta or ANY_DICT
        try:
            return adapter.validate_json(raw)
        except ValidationError as exc:
            raise DocumentInvalid(
                self.name, doc_name, None, exc.errors(include_url=False), "stored metadata"
            ) from None


# Siblings, not one the other's subclass: a type checker then refuses a log kind where
# a snapshot kind is needed (store.documents(CHAT)), which no run-time check can match.
@dataclass(frozen=True, slots=True)
class Kind(BaseKind[T_co]):
    """A snapshot kind, and the typed handle of it: build it with
    :meth:`Registry.register` and open it with ``store.documents(kind)``, whose
    ``get(name).data`` is then typed (``T_co``: its documents' type).
    """


@dataclass(frozen=True, slots=True)
class LogKind(BaseKind[T_co], Generic[T_co, M_co]):
    """A log kind's handle, opened with ``store.log(kind)``: ``T`` is its items' type,
    ``M`` its head's metadata type."""


KindRef: TypeAlias = str | BaseKind[Any]
"""A kind as store methods take it: its name, or the handle :meth:`Registry.register` returned."""

ANY_DICT: TypeAdapter[Any] = TypeAdapter(dict[str, Any])


class Register(Protocol):
    """The type of ``register`` (of a :class:`Registry` and of a store): what it returns
    for each mode. Its overloads are written once, here."""

    @overload
    def __call__(
        self,
        kind: str,
        model: type[T] | TypeAdapter[T],
        *,
        mode: Literal["snapshot"] = "snapshot",
        schema_version: int = 1,
        upgraders: Mapping[int, Upgrader] | None = None,
        meta: None = None,
        notify: bool | None = None,
        durability: Durability = "durable",
    ) -> Kind[T]: ...

    @overload
    def __call__(
        self,
        kind: str,
        model: type[T] | TypeAdapter[T],
        *,
        mode: Literal["log"],
        schema_version: int = 1,
        upgraders: Mapping[int, Upgrader] | None = None,
        meta: type[M] | TypeAdapter[M],
        notify: bool | None = None,
        durability: Durability = "durable",
    ) -> LogKind[T, M]: ...

    # The metadata without meta= is dict[str, object], not dict[str, Any]: mypy answers Any
    # for a call to an overload that matches several with an argument holding Any, and
    # the log's items would lose their type.
    @overload
    def __call__(
        self,
        kind: str,
        model: type[T] | TypeAdapter[T],
        *,
        mode: Literal["log"],
        schema_version: int = 1,
        upgraders: Mapping[int, Upgrader] | None = None,
        meta: None = None,
        notify: bool | None = None,
        durability: Durability = "durable",
    ) -> LogKind[T, dict[str, object]]: ...

    @overload
    def __call__(
        self,
        kind: str,
        model: Any,
        *,
        mode: Mode = "snapshot",
        schema_version: int = 1,
        upgraders: Mapping[int, Upgrader] | None = None,
        meta: Any = None,
        notify: bool | None = None,
        durability: Durability = "durable",
    ) -> BaseKind[Any]: ...


class Registry:
    """Kind name -> :class:`Kind`. One registry can serve many stores."""

    def __init__(self) -> None:
        self._kinds: dict[str, BaseKind[Any]] = {}

    @property
    def register(self) -> Register:
        """Register (or re-register) ``kind`` with its model; returns its typed handle, a
        :class:`Kind` (a :class:`LogKind` for ``mode="log"``).

        ``notify``: whether its writes wake change feeds at once (NOTIFY) rather than at
        their next poll; default True for snapshot kinds, False for log kinds.
        ``durability="async"``: its writes commit without waiting for the WAL to reach
        disk, so a server crash may lose the last instant of them (never part of one,
        nor anything of another kind): docs/performance.md.
        """
        return self._register

    def _register(
        self,
        kind: str,
        model: Any,
        *,
        mode: Mode = "snapshot",
        schema_version: int = 1,
        upgraders: Mapping[int, Upgrader] | None = None,
        meta: Any = None,
        notify: bool | None = None,
        durability: Durability = "durable",
    ) -> Any:  # Any: what Register's overloads say it is, for each mode
        check_key(kind)
        if mode not in ("snapshot", "log"):
            raise ValueError(f"kind {kind!r}: mode must be 'snapshot' or 'log', not {mode!r}")
        if meta is not None and mode != "log":
            raise ValueError(f"kind {kind!r}: meta= is for log kinds only")
        if schema_version < 1:
            raise ValueError(f"kind {kind!r}: schema_version starts at 1, got {schema_version}")
        if schema_version > 2**31 - 1:  # the column is PostgreSQL's integer
            raise ValueError(f"kind {kind!r}: schema_version is at most 2**31-1, got {schema_version}")
        if durability not in ("durable", "async"):
            raise ValueError(f"kind {kind!r}: durability must be 'durable' or 'async', not {durability!r}")
        steps = dict(upgraders or {})
        wrong = [k for k in steps if not 1 <= k < schema_version]
        if wrong:
            raise ValueError(
                f"kind {kind!r}: upgrader keys must be in 1..{schema_version - 1} "
                f"(each upgrades from that version to the next), got {sorted(wrong)}"
            )
        if steps:
            missing = [v for v in range(min(steps), schema_version) if v not in steps]
            if missing:
                raise ValueError(f"kind {kind!r}: no upgrader from schema_version(s) {missing}")
        spec: BaseKind[Any] = (LogKind if mode == "log" else Kind)(
            name=kind,
            adapter=model if isinstance(model, TypeAdapter) else TypeAdapter(model),
            mode=mode,
            schema_version=schema_version,
            upgraders=steps,
            meta=None if meta is None else (meta if isinstance(meta, TypeAdapter) else TypeAdapter(meta)),
            notify=(mode == "snapshot") if notify is None else bool(notify),
            durability=durability,
        )
        self._kinds[kind] = spec
        return spec

    def add(self, kind: K) -> K:
        """Hold ``kind``, a handle :meth:`register` made (in any registry), as it is, in
        place of any kind of its name; returns it. The handle then works on stores of this
        registry: how a layer hands its kinds to an app."""
        if not isinstance(kind, BaseKind):
            raise TypeError(f"Registry.add takes a Kind (from Registry.register), not {type(kind).__name__}")
        check_key(kind.name)
        self._kinds[kind.name] = kind
        return kind

    def get(self, kind: KindRef, mode: Mode | None = None) -> BaseKind[Any]:
        """The registered kind, checked against the mode an operation needs."""
        name = self.name(kind)
        try:
            spec = self._kinds[name]
        except KeyError:
            raise UnknownKind(name, list(self._kinds)) from None
        if mode is not None and spec.mode != mode:
            hint = "append/read/rewrite" if spec.mode == "log" else "put/get"
            raise KindMismatch(f"kind {name!r} is a {spec.mode} kind: use {hint}")
        return spec

    def name(self, kind: KindRef) -> str:
        """The name of a kind given as its name (returned as it is) or its handle.

        A handle must be the one this registry holds under its name (or equal to it): a
        handle of another registration would type the documents as what they are not.
        """
        if isinstance(kind, BaseKind):
            spec = self._kinds.get(kind.name)
            if spec is None:
                raise UnknownKind(kind.name, list(self._kinds))
            if spec is not kind and spec != kind:
                raise KindMismatch(
                    f"kind {kind.name!r}: this handle is not the kind registered under that name in "
                    "this store (it was registered again, or in another registry)"
                )
            return kind.name
        return kind

    def __contains__(self, kind: object) -> bool:
        """Whether a kind of this name (or this very handle) is registered."""
        if isinstance(kind, BaseKind):
            spec = self._kinds.get(kind.name)
            return spec is kind or spec == kind
        return isinstance(kind, str) and kind in self._kinds

    def __iter__(self) -> Iterator[BaseKind[Any]]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    def copy(self) -> Registry:
        """A registry holding the same kinds, to be extended without touching this one."""
        new = Registry()
        new._kinds = dict(self._kinds)
        return new
