"""The StorageManager's logic, free of I/O, shared by the sync and async managers.

Like :mod:`docstore._core` does for the stores, each operation is a *plan*: a generator
that yields :class:`Call` objects (a store method and its arguments) and receives their
results, or has the store's :class:`~docstore.DocStoreError` thrown into it. The sync
manager drives a plan by calling :class:`~docstore.DocStore`, the async one by awaiting
:class:`~docstore.AsyncDocStore`; neither holds logic of its own, so they cannot drift.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Collection, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

import orjson
from psycopg.conninfo import make_conninfo
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from docstore.doc import Doc
from docstore.errors import (
    DocStoreError,
    DocumentInvalid,
    DocumentNotFound,
    OutcomeUnknown,
    VersionConflict,
)
from docstore.kinds import Kind, Registry

from ._copies import saved_copies
from ._kinds import agent_registry
from ._sessions import (
    QA_RESULT,
    SESSION_KEYS,
    list_row,
    logged,
    qa_record,
    qa_row,
    session_fields,
    session_view,
    sessions_where,
)
from .configfiles import ConfigProblem, LoadedConfigs
from .configs import CONFIG_KINDS, CONFIG_MODELS, GraphWorkflowConfig, resolve_config_kind, upgrade_config
from .messages import MESSAGE_ADAPTER, MESSAGES_ADAPTER

T = TypeVar("T")

CONVERSATION = "conversation"
"""The kind conversations are stored under."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_SAVE_ATTEMPTS = 8


class StorageConfigError(DocStoreError, ValueError):
    """Persistence is switched on but its settings are missing or wrong."""


@dataclass(frozen=True, slots=True)
class Call:
    """One store method to run: ``getattr(store, method)(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


Plan = Generator[Call, Any, T]


@dataclass(frozen=True, slots=True)
class Job(Generic[T]):
    """A plan, and whether the driver must run it in one transaction."""

    plan: Plan[T]
    atomic: bool = False


@dataclass(frozen=True)
class SyncReport:
    """What a config sync did.

    ``applied`` is False when problems stopped it: then nothing was written.
    """

    written: tuple[tuple[str, str, int], ...] = ()
    """(kind, name, new version) of every config that changed."""
    unchanged: tuple[tuple[str, str], ...] = ()
    """(kind, name) of every config already stored as it is."""
    problems: tuple[ConfigProblem, ...] = ()
    """Broken files and entries, each naming its file and entry."""
    applied: bool = True
    warnings: tuple[ConfigProblem, ...] = ()
    """Entries left out as the framework leaves them out: a name defined again."""
    created: tuple[tuple[str, str], ...] = ()
    """(kind, name) of the configs in ``written`` that were not stored before."""

    @property
    def ok(self) -> bool:
        """True when nothing was broken."""
        return not self.problems

    def __str__(self) -> str:
        lines = [
            f"{len(self.written)} written, {len(self.unchanged)} unchanged, "
            f"{len(self.problems)} problem(s)"
            + ("" if self.applied else "; nothing written (use partial to sync the rest)")
        ]
        lines += [f"  wrote {kind} {name!r} version {version}" for kind, name, version in self.written]
        lines += [f"  problem: {problem}" for problem in self.problems]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


# --- settings from the environment ----------------------------------------------------


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
    url = env.get("AURITE_DB_URL", "").strip()
    if url:
        return EnvSettings(url, schema, read_url)
    missing = [var for var in ("AURITE_DB_USER", "AURITE_DB_NAME") if not env.get(var)]
    if missing:
        raise StorageConfigError(
            f"AURITE_ENABLE_DB is on but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: set AURITE_DB_URL, or "
            "AURITE_DB_USER and AURITE_DB_NAME (and AURITE_DB_HOST, AURITE_DB_PORT, "
            "AURITE_DB_PASSWORD as needed)"
        )
    port = env.get("AURITE_DB_PORT") or "5432"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise StorageConfigError("AURITE_DB_PORT must be a port number (1-65535)")
    dsn = make_conninfo(
        host=env.get("AURITE_DB_HOST") or "localhost",
        port=port,
        user=env["AURITE_DB_USER"],
        password=env.get("AURITE_DB_PASSWORD") or None,
        dbname=env["AURITE_DB_NAME"],
    )
    return EnvSettings(dsn, schema, read_url)


# --- conversations ----------------------------------------------------------------------


def conversation_name(agent_name: str, session_id: str) -> str:
    """The document name of a session: its session id, as the framework keys sessions.

    ``agent_name`` takes no part (it is kept in the head's metadata): ``save_session``,
    ``get_session`` and the agent-centred ``save_full_history``/``load_history`` address
    the same session.
    """
    return session_id


def _canonical(adapter: Any, message: Any) -> bytes:
    # Sorted keys: jsonb reorders keys, so bytes read back must compare equal to bytes
    # dumped before the write.
    return orjson.dumps(adapter.dump_python(message, mode="json"), option=orjson.OPT_SORT_KEYS)


def _chain(start: bytes, canon: Iterable[bytes]) -> bytes:
    digest = start
    for item in canon:
        digest = hashlib.sha256(digest + item).digest()
    return digest


def _store_meta(meta: Any) -> dict[str, Any]:
    if isinstance(meta, BaseModel):
        # Not exclude_none: it would reach into a saved execution result and drop its nulls.
        return meta.model_dump(mode="json")
    return dict(meta) if isinstance(meta, Mapping) else {}


@dataclass(slots=True)
class _Known:
    """What this manager last wrote to a conversation: enough to save the next turns with
    one append and no read, for as long as nobody else writes to it."""

    version: int
    digest: bytes  # the hash chain of the live messages, as the head's metadata has it
    raw: list[bytes]  # the live messages as the host gave them, as JSON
    meta: dict[str, Any]
    parsed: list[Any] | None = None

    def messages(self) -> list[Any]:
        """The live messages as plain JSON data, parsed on the first save that needs them
        (a manager that never sees the session again never pays for it)."""
        if self.parsed is None:
            self.parsed = [orjson.loads(r) for r in self.raw]
        return self.parsed


_KNOWN_LIMIT = 1024


class ManagerCore:
    """Plans for every StorageManager operation, bound to the store's registry."""

    def __init__(self, registry: Registry) -> None:
        self.kinds = registry
        register_kinds(registry)
        # Per process, bounded; a wrong entry only costs one VersionConflict, then a read.
        self._known: dict[str, _Known] = {}

    def _remember(self, name: str, known: _Known | None) -> None:
        self._known.pop(name, None)
        if known is not None:
            if len(self._known) >= _KNOWN_LIMIT:
                del self._known[next(iter(self._known))]
            self._known[name] = known

    # --- configs -----------------------------------------------------------------------

    def coerce_config(self, kind: str, value: Any) -> BaseModel:
        """``value`` (a model or a dict, in a current or older shape) as ``kind``'s model."""
        model = CONFIG_MODELS[kind]
        if isinstance(value, model):
            same: BaseModel = value
            return same
        raw = value.model_dump(by_alias=True) if isinstance(value, BaseModel) else value
        label = str(raw.get("name") or "<unnamed>") if isinstance(raw, Mapping) else "<unnamed>"
        try:
            data = upgrade_config(kind, raw) if isinstance(raw, Mapping) else raw
            result: BaseModel = model.model_validate(data)
        except ValidationError as exc:
            raise DocumentInvalid(kind, label, None, exc.errors(include_url=False), "write") from None
        except (TypeError, ValueError) as exc:  # an upgrader refusing an ambiguous entry
            raise DocumentInvalid(kind, label, None, [{"loc": (), "msg": str(exc)}], "write") from None
        return result

    @staticmethod
    def workflow_kind(value: Any) -> str:
        """``graph_workflow`` for a graph (a model, or a dict with nodes), else ``linear_workflow``."""
        if isinstance(value, GraphWorkflowConfig):
            return "graph_workflow"
        if isinstance(value, Mapping) and (value.get("type") == "graph_workflow" or "nodes" in value):
            return "graph_workflow"
        return "linear_workflow"

    def sync_config(self, kind: str, value: Any) -> Job[Doc[Any]]:
        """Store one config; an unchanged one writes nothing."""
        model = self.coerce_config(kind, value)
        name: str = getattr(model, "name")  # noqa: B009 - every config model has one

        def plan() -> Plan[Doc[Any]]:
            doc: Doc[Any] = yield Call("put", (kind, name, model))
            return doc

        return Job(plan())

    def collect(self, groups: Mapping[str, Any]) -> dict[str, dict[str, BaseModel]]:
        """kind -> name -> validated config, from mappings or iterables of configs.

        Everything is validated before any SQL runs, so a bad entry costs no round trip.
        """
        out: dict[str, dict[str, BaseModel]] = {}
        for kind, values in groups.items():
            if values is None:
                continue
            pairs: Iterable[tuple[str | None, Any]] = (
                values.items() if isinstance(values, Mapping) else ((None, v) for v in values)
            )
            for key, value in pairs:
                actual = self.workflow_kind(value) if kind == "linear_workflow" else kind
                model = self.coerce_config(actual, value)
                name: str = getattr(model, "name")  # noqa: B009
                if key is not None and key != name:
                    raise DocumentInvalid(
                        actual,
                        str(key),
                        None,
                        [{"loc": ("name",), "msg": f"listed under {key!r} but named {name!r}"}],
                        "write",
                    )
                bucket = out.setdefault(actual, {})
                if name in bucket:
                    raise DocumentInvalid(
                        actual, name, None, [{"loc": ("name",), "msg": "given twice in one sync"}], "write"
                    )
                bucket[name] = model
        return out

    def sync_many(
        self,
        configs: Mapping[str, Mapping[str, BaseModel]],
        problems: Sequence[ConfigProblem] = (),
        warnings: Sequence[ConfigProblem] = (),
    ) -> Job[SyncReport]:
        """Store every config in one transaction; report what changed."""

        def plan() -> Plan[SyncReport]:
            written: list[tuple[str, str, int]] = []
            unchanged: list[tuple[str, str]] = []
            created: list[tuple[str, str]] = []
            for kind, by_name in configs.items():
                if not by_name:
                    continue
                before: dict[str, Doc[Any]] = yield Call("get_many", (kind, list(by_name)))
                docs: list[Doc[Any]] = yield Call("put_many", (kind, dict(by_name)))
                for doc in docs:
                    old = before.get(doc.name)
                    if old is not None and old.version == doc.version:
                        unchanged.append((kind, doc.name))
                    else:
                        written.append((kind, doc.name, doc.version))
                        if old is None:
                            created.append((kind, doc.name))
            return SyncReport(
                tuple(written),
                tuple(unchanged),
                tuple(problems),
                warnings=tuple(warnings),
                created=tuple(created),
            )

        return Job(plan(), atomic=True)

    def sync_loaded(self, loaded: LoadedConfigs, partial: bool) -> Job[SyncReport]:
        """Sync what :func:`~docstore.agents.load_configs` found, unless it found problems
        and ``partial`` is False: then nothing is written."""
        if loaded.problems and not partial:
            return Job(
                _done(
                    SyncReport(
                        problems=tuple(loaded.problems), applied=False, warnings=tuple(loaded.warnings)
                    )
                )
            )
        return self.sync_many(loaded.configs, loaded.problems, loaded.warnings)

    def load_all_configs(self) -> Job[dict[str, dict[str, Any]]]:
        """Every stored config, kind -> name -> model."""

        def plan() -> Plan[dict[str, dict[str, Any]]]:
            out: dict[str, dict[str, Any]] = {}
            for kind in CONFIG_KINDS:
                docs: list[Doc[Any]] = yield Call("list", (kind,))
                out[kind] = {doc.name: doc.data for doc in docs}
            return out

        return Job(plan())

    # --- the framework's component index ------------------------------------------------

    def sync_index(self, component_index: Any) -> Job[SyncReport]:
        """Store the framework's component index (type -> name -> config) in one
        transaction; an unchanged config writes nothing, a changed one one version."""
        if not isinstance(component_index, Mapping):
            raise DocumentInvalid(
                "component_index",
                "<index>",
                None,
                [{"loc": (), "msg": "the component index is a dict: type -> name -> config"}],
                "write",
            )
        configs: dict[str, dict[str, BaseModel]] = {}
        for type_name, entries in component_index.items():
            try:
                kind = resolve_config_kind(str(type_name))
            except KeyError:
                raise DocumentInvalid(
                    str(type_name),
                    "<index>",
                    None,
                    [
                        {
                            "loc": (),
                            "msg": f"unknown component type {type_name!r}; known: {', '.join(CONFIG_KINDS)}",
                        }
                    ],
                    "write",
                ) from None
            if not isinstance(entries, Mapping):
                raise DocumentInvalid(
                    kind,
                    "<index>",
                    None,
                    [{"loc": (), "msg": "a component type maps names to configs"}],
                    "write",
                )
            for key, value in entries.items():
                # As the framework's own storage does: a value JSON cannot hold (a Path)
                # is stored as its str().
                model = self.coerce_config(kind, to_jsonable_python(value, fallback=str))
                name: str = getattr(model, "name")  # noqa: B009
                if key != name:
                    raise DocumentInvalid(
                        kind,
                        str(key),
                        None,
                        [{"loc": ("name",), "msg": f"indexed as {key!r} but named {name!r}"}],
                        "write",
                    )
                bucket = configs.setdefault(kind, {})
                if name in bucket:
                    raise DocumentInvalid(
                        kind,
                        name,
                        None,
                        [{"loc": ("name",), "msg": "indexed under two types of one kind"}],
                        "write",
                    )
                bucket[name] = model
        return self.sync_many(configs)

    def load_index(self) -> Job[dict[str, dict[str, dict[str, Any]]]]:
        """Every stored config as the framework indexes it: type -> name -> dict, each
        under the ``type`` it carries (else its kind)."""

        def plan() -> Plan[dict[str, dict[str, dict[str, Any]]]]:
            index: dict[str, dict[str, dict[str, Any]]] = {}
            for kind in CONFIG_KINDS:
                if kind not in self.kinds:
                    continue
                adapter = self.kinds.get(kind).adapter
                docs: list[Doc[Any]] = yield Call("list", (kind,))
                for doc in docs:
                    data = adapter.dump_python(doc.data, mode="json", by_alias=True)
                    tag = data.get("type")
                    group = tag if isinstance(tag, str) and _kind_of(tag) == kind else kind
                    index.setdefault(group, {})[doc.name] = data
            return index

        return Job(plan())

    def delete_component(self, name: str) -> Job[bool]:
        """Delete the config named ``name`` (of every config kind holding one); its
        versions stay readable. False when there was none."""

        def plan() -> Plan[bool]:
            deleted = False
            for kind in CONFIG_KINDS:
                if kind not in self.kinds:
                    continue
                try:
                    yield Call("delete", (kind, name))
                except DocumentNotFound:
                    continue
                deleted = True
            return deleted

        return Job(plan(), atomic=True)

    # --- history -----------------------------------------------------------------------

    def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None
    ) -> Job[list[dict[str, Any]]]:
        """The last ``limit`` messages of a session, oldest first, as dicts."""
        spec = self.kinds.get(CONVERSATION, "log")

        def plan() -> Plan[list[dict[str, Any]]]:
            if not session_id:
                return []
            name = conversation_name(agent_name, session_id)
            last = limit if limit is not None and limit > 0 else None
            items: list[Any] = yield Call("read", (CONVERSATION, name), {"last": last})
            if spec.adapter is MESSAGE_ADAPTER:
                # One call over the list: 230-240 us for 50 messages, 270-380 one by one.
                dumped: list[dict[str, Any]] = MESSAGES_ADAPTER.dump_python(items, mode="json")
                return dumped
            return [spec.adapter.dump_python(item, mode="json") for item in items]

        return Job(plan())

    def save_history(
        self,
        agent_name: str,
        session_id: str | None,
        conversation: Sequence[Any],
        workflow_name: str | None,
        parent_session_id: str | None,
    ) -> Job[int]:
        """Store a session's full conversation; returns how many messages were written.

        When the stored live messages are a prefix of ``conversation`` only the rest is
        appended (and validated); otherwise the conversation replaces them (a rewrite,
        old ones kept). The head's meta keeps a hash chain of the live messages and the
        version it describes, so the prefix is checked with one head read and no item read.
        """
        if not session_id:
            return Job(_done(0))
        spec = self.kinds.get(CONVERSATION, "log")
        name = conversation_name(agent_name, session_id)
        given = {
            "agent_name": agent_name,
            "session_id": session_id,
            "workflow_name": workflow_name,
            "parent_session_id": parent_session_id,
        }
        return Job(self._save_plan(_Conversation(spec, name, conversation), given))

    def append_history(
        self,
        agent_name: str,
        session_id: str | None,
        messages: Sequence[Any],
        workflow_name: str | None,
        parent_session_id: str | None,
    ) -> Job[int]:
        """Append new messages to a session; returns how many were written.

        Costs one head read and one append whatever the conversation's length, and keeps
        the head's hash chain current, so a later ``save_full_history`` stays cheap.
        """
        if not session_id:
            return Job(_done(0))
        spec = self.kinds.get(CONVERSATION, "log")
        name = conversation_name(agent_name, session_id)
        validated = self._validate_messages(spec, name, messages)
        canon = [_canonical(spec.adapter, m) for m in validated]
        given = {
            "agent_name": agent_name,
            "session_id": session_id,
            "workflow_name": workflow_name,
            "parent_session_id": parent_session_id,
        }

        def plan() -> Plan[int]:
            conflict: DocStoreError | None = None
            landed: dict[tuple[str, int], int] = {}
            for _attempt in range(_SAVE_ATTEMPTS):
                head, old_meta, meta = yield from self._head(name, given)
                if _landed(head, old_meta, landed) is not None:
                    return len(validated)  # an attempt whose reply was lost did commit
                base = head.version if head is not None else 0
                if head is None:
                    meta["history_digest"] = _chain(b"", canon).hex()
                elif _digest_current(head, old_meta):
                    meta["history_digest"] = _chain(bytes.fromhex(old_meta["history_digest"]), canon).hex()
                else:
                    meta.pop("history_digest", None)  # stale: the next full save re-reads
                if "history_digest" in meta:
                    meta["history_digest_version"] = base + len(validated)
                else:
                    meta.pop("history_digest_version", None)
                if not validated and (head is None or meta == old_meta):
                    return 0
                args: dict[str, Any] = {"expected_version": _cas(head), "meta": meta}
                if "history_digest" not in meta:
                    # No hash chain to recognise this write by: a key of its own instead.
                    args["idempotency_key"] = f"docstore-append:{uuid.uuid4().hex}"
                try:
                    try:
                        yield Call("append", (CONVERSATION, name, validated), args)
                    except OutcomeUnknown:
                        if "idempotency_key" not in args:
                            raise
                        # The same key again: the first attempt's version if it landed.
                        yield Call("append", (CONVERSATION, name, validated), args)
                except VersionConflict as exc:
                    conflict = exc
                    continue
                except OutcomeUnknown as exc:
                    if "idempotency_key" in args:
                        raise
                    conflict = _outcome(landed, meta, len(validated), exc)
                    continue
                return len(validated)
            assert conflict is not None
            raise conflict

        return Job(plan())

    @staticmethod
    def _head(
        name: str, given: Mapping[str, Any], replace: Collection[str] = ()
    ) -> Plan[tuple[Doc[Any] | None, dict[str, Any], dict[str, Any]]]:
        """The conversation's head (None if there is none), its meta, and the meta to write.

        A ``None`` in ``given`` leaves the stored key as it is, unless the key is in
        ``replace`` (then it is cleared). A new head of an agent's session is named for it.
        """
        try:
            head: Doc[Any] | None = yield Call("get", (CONVERSATION, name))
        except DocumentNotFound:
            head = None
        old_meta = _store_meta(head.data) if head is not None else {}
        meta = {**old_meta, **{k: v for k, v in given.items() if v is not None}}
        for key in replace:
            if given.get(key) is None:
                meta.pop(key, None)
        meta = {k: v for k, v in meta.items() if v is not None}
        if head is None and "result_type" not in meta and meta.get("agent_name"):
            meta.update(name=meta["agent_name"], result_type="agent")
        return head, old_meta, meta

    def _validate_messages(self, spec: Kind[Any], name: str, conversation: Sequence[Any]) -> list[Any]:
        out = []
        for index, message in enumerate(conversation):
            try:
                out.append(spec.adapter.validate_python(message))
            except ValidationError as exc:
                errors = [{**e, "loc": (index, *e["loc"])} for e in exc.errors(include_url=False)]
                raise DocumentInvalid(CONVERSATION, name, None, errors, f"message {index}") from None
        return out

    def _save_plan(
        self, conv: _Conversation, given: dict[str, Any], replace: Collection[str] = ()
    ) -> Plan[int]:
        name = conv.name
        # The hash chain each attempt writes is this manager's own idempotency key: after
        # a lost reply, a head holding it at its version means that attempt committed.
        landed: dict[tuple[str, int], int] = {}
        written = yield from self._save_known(conv, given, landed, replace)
        if written is not None:
            return written
        conflict: DocStoreError | None = None
        for _attempt in range(_SAVE_ATTEMPTS):
            head, old_meta, meta = yield from self._head(name, given, replace)
            done = _landed(head, old_meta, landed)
            if done is not None:
                return done
            base = head.version if head is not None else 0
            items: list[Any] | None = None
            stored: int | None  # how many messages are stored already; None: not a prefix
            if head is None:
                stored, prefix_digest = 0, b""
            elif _digest_current(head, old_meta):
                stored = head.count or 0
                prefix_digest = bytes.fromhex(old_meta["history_digest"])
                if not conv.has_prefix(stored, prefix_digest):
                    stored = None
            else:
                # No digest describing this version (written by other code, or by an
                # older docstore): compare with the live items themselves, once.
                items = yield Call("read", (CONVERSATION, name))
                assert items is not None
                stored = len(items)
                canon = [_canonical(conv.spec.adapter, m) for m in items]
                prefix_digest = _chain(b"", canon)
                if stored > len(conv) or conv.canonical(0, stored) != canon:
                    stored = None
            if stored is None and head is not None and 0 < len(conv) < (head.count or 0):
                # A prefix of what is stored: a save lagging behind another manager's is
                # stale, and writes nothing rather than cut the live conversation short.
                # (An empty conversation still clears: no lagging host saves nothing.)
                if items is None:
                    items = yield Call("read", (CONVERSATION, name))
                if [_canonical(conv.spec.adapter, m) for m in items[: len(conv)]] == conv.canonical():
                    return 0
            if stored is None:
                new, digest = conv.validated(0, len(conv)), _chain(b"", conv.canonical())
            else:
                new = conv.validated(stored, len(conv))
                digest = _chain(prefix_digest, conv.canonical(stored))
            meta["history_digest"] = digest.hex()
            meta["history_digest_version"] = base + len(new)
            if stored is not None and not new and (meta == old_meta if head is not None else not replace):
                return 0  # nothing new (or an empty conversation never stored)
            try:
                yield Call(
                    "append" if stored is not None else "rewrite",
                    (CONVERSATION, name, new),
                    {"expected_version": _cas(head), "meta": meta},
                )
            except VersionConflict as exc:
                conflict = exc  # another writer got in between: look again
                continue
            except OutcomeUnknown as exc:
                conflict = _outcome(landed, meta, len(new), exc)
                continue
            copies = conv.raw_copies()
            self._remember(
                name,
                None
                if copies is None or not base + len(new)
                else _Known(base + len(new), digest, copies, meta),
            )
            return len(new)
        assert conflict is not None
        raise conflict

    def _save_known(
        self,
        conv: _Conversation,
        given: dict[str, Any],
        landed: dict[tuple[str, int], int],
        replace: Collection[str] = (),
    ) -> Plan[int | None]:
        """Save with what this manager wrote last, if the conversation extends it: one
        append, guarded by the version *and* the live count it left (a ``clear`` or
        ``delete`` by someone else leaves the version as it was), with no read and no
        hashing or validation of the stored messages (comparing them with their copies is
        a C-level ``==`` per message). The hash chain in the head's metadata moves on with
        ``meta_update``, which keeps any key another manager set meanwhile, and so do the
        head's keys this save changes. Returns None, having written nothing, when the
        general path must run (so does a save that clears a key of the head).
        """
        known = self._known.get(conv.name)
        if known is None:
            return None
        count = len(known.raw)
        if len(conv) < count or conv.messages[:count] != known.messages():
            return None
        changes = {
            k: v for k, v in given.items() if known.meta.get(k) != v and (v is not None or k in replace)
        }
        if any(v is None for v in changes.values()):
            return None  # a key to clear, which meta_update cannot do
        new = conv.validated(count, len(conv))
        if not new and not changes:
            return 0
        digest = _chain(known.digest, conv.canonical(count))
        update = {
            "history_digest": digest.hex(),
            "history_digest_version": known.version + len(new),
            **changes,
        }
        try:
            yield Call(
                "append",
                (CONVERSATION, conv.name, new),
                {"expected_version": known.version, "expected_count": count, "meta_update": update},
            )
        except VersionConflict:
            self._remember(conv.name, None)  # someone else wrote: take the general path
            return None
        except OutcomeUnknown as exc:
            self._remember(conv.name, None)  # the general path looks whether it landed
            _outcome(landed, {**known.meta, **update}, len(new), exc)
            return None
        copies = conv.raw_copies(count)
        self._remember(
            conv.name,
            None
            if copies is None
            else _Known(
                known.version + len(new),
                digest,
                known.raw + copies,
                {**known.meta, **update},
                known.messages() + saved_copies(conv.messages[count:], copies),
            ),
        )
        return len(new)

    # --- the framework's session interface ---------------------------------------------

    def save_session(self, session_data: Any) -> Job[bool]:
        """Store a session record of the framework; its conversation as the log."""
        session_id, conversation, fields = session_fields(session_data)
        spec = self.kinds.get(CONVERSATION, "log")
        given = {"session_id": session_id, **fields}
        if conversation is not None:
            save = self._save_plan(_Conversation(spec, session_id, conversation), given, SESSION_KEYS)
            return Job(_then(save, True))

        def plan() -> Plan[bool]:
            # No conversation in this result (a workflow's): only the head changes. The
            # write sets the head to ``meta``: after a lost reply, reading it back says
            # whether it landed (then it equals), so looking again is the retry.
            conflict: DocStoreError | None = None
            for _attempt in range(_SAVE_ATTEMPTS):
                head, old_meta, meta = yield from self._head(session_id, given, SESSION_KEYS)
                if head is not None and meta == old_meta:
                    return True
                try:
                    yield Call(
                        "append",
                        (CONVERSATION, session_id, []),
                        {"expected_version": _cas(head), "meta": meta},
                    )
                except (VersionConflict, OutcomeUnknown) as exc:
                    conflict = exc
                    continue
                self._remember(session_id, None)
                return True
            assert conflict is not None
            raise conflict

        return Job(plan())

    def get_session(self, session_id: str) -> Job[dict[str, Any] | None]:
        """A session record as ``save_session`` was given it, or None."""
        spec = self.kinds.get(CONVERSATION, "log")

        def plan() -> Plan[dict[str, Any] | None]:
            try:
                head: Doc[Any] = yield Call("get", (CONVERSATION, session_id))
            except DocumentNotFound:
                return None
            meta = _store_meta(head.data)
            messages = None
            if logged(meta):
                items: list[Any] = yield Call("read", (CONVERSATION, session_id))
                messages = [spec.adapter.dump_python(item, mode="json") for item in items]
            return session_view(head, meta, messages)

        return Job(plan())

    def get_session_history(self, session_id: str) -> Job[list[dict[str, Any]] | None]:
        """The session's conversation, or None (no such session, or a workflow's)."""

        def plan() -> Plan[list[dict[str, Any]] | None]:
            record = yield from self.get_session(session_id).plan
            if record is None:
                return None
            history = record["execution_result"].get("conversation_history")
            return history if isinstance(history, list) else None

        return Job(plan())

    def get_sessions_list(
        self, agent_name: str | None, workflow_name: str | None, limit: int, offset: int
    ) -> Job[tuple[list[dict[str, Any]], int]]:
        """(rows, total) of the sessions, newest first; a workflow's runs or an agent's own."""
        for label, number in (("limit", limit), ("offset", offset)):
            if not isinstance(number, int) or number < 0:
                raise ValueError(f"{label} must be a non-negative int, not {number!r}")
        where = sessions_where(agent_name, workflow_name)

        def plan() -> Plan[tuple[list[dict[str, Any]], int]]:
            total: int = yield Call("count", (CONVERSATION,), {"where": where})
            heads: list[Doc[Any]] = yield Call(
                "list", (CONVERSATION,), {"where": where, "limit": offset + limit, "order_by": "-updated_at"}
            )
            return [list_row(h, _store_meta(h.data)) for h in heads[offset:]], total

        return Job(plan())

    def delete_session(self, session_id: str) -> Job[bool]:
        """Delete a session for good; a workflow's takes its agents' sessions with it."""

        def plan() -> Plan[bool]:
            try:
                head: Doc[Any] = yield Call("get", (CONVERSATION, session_id))
            except DocumentNotFound:
                return False
            meta = _store_meta(head.data)
            doomed = [session_id]
            base = meta.get("base_session_id")
            if meta.get("result_type") == "workflow" and base:
                agents: list[Doc[Any]] = yield Call(
                    "list",
                    (CONVERSATION,),
                    {"where": {"base_session_id": base, "result_type": {"$ne": "workflow"}}},
                )
                doomed += [doc.name for doc in agents if doc.name != session_id]
            gone: list[str] = yield Call("purge", (CONVERSATION, doomed))
            for name in doomed:
                self._remember(name, None)
            return session_id in gone

        return Job(plan(), atomic=True)

    def cleanup_old_sessions(self, days: int, max_sessions: int) -> Job[int]:
        """Delete sessions last written more than ``days`` ago, then all but the newest
        ``max_sessions``; returns how many went."""
        if not isinstance(days, int | float) or days < 0:
            raise ValueError(f"days must be a non-negative number, not {days!r}")
        if not isinstance(max_sessions, int) or max_sessions < 0:
            raise ValueError(f"max_sessions must be a non-negative int, not {max_sessions!r}")

        def plan() -> Plan[int]:
            old: int = yield Call("prune", (CONVERSATION,), {"older_than": timedelta(days=days)})
            over: int = yield Call("prune", (CONVERSATION,), {"keep_last": max_sessions})
            self._known.clear()
            return old + over

        return Job(plan())

    # --- QA test results -----------------------------------------------------------------

    def save_qa_result(self, result_data: Any) -> Job[bool]:
        """Store a QA test result under its ``result_id``."""
        result_id, record = qa_record(result_data)

        def plan() -> Plan[bool]:
            yield Call("put", (QA_RESULT, result_id, record))
            return True

        return Job(plan())

    def get_qa_result(self, result_id: str) -> Job[dict[str, Any] | None]:
        """A stored QA result with its ``result``, or None."""

        def plan() -> Plan[dict[str, Any] | None]:
            try:
                doc: Doc[Any] = yield Call("get", (QA_RESULT, result_id))
            except DocumentNotFound:
                return None
            return qa_row(doc, full=True)

        return Job(plan())

    def get_qa_results_list(
        self, evaluation_config_id: str | None, component_type: str | None, limit: int, offset: int
    ) -> Job[tuple[list[dict[str, Any]], int]]:
        """(rows without their ``result``, total), newest first."""
        for label, number in (("limit", limit), ("offset", offset)):
            if not isinstance(number, int) or number < 0:
                raise ValueError(f"{label} must be a non-negative int, not {number!r}")
        where = {
            k: v
            for k, v in (("evaluation_config_id", evaluation_config_id), ("component_type", component_type))
            if v
        } or None

        def plan() -> Plan[tuple[list[dict[str, Any]], int]]:
            total: int = yield Call("count", (QA_RESULT,), {"where": where})
            docs: list[Doc[Any]] = yield Call(
                "list", (QA_RESULT,), {"where": where, "limit": offset + limit, "order_by": "-created_at"}
            )
            return [qa_row(doc, full=False) for doc in docs[offset:]], total

        return Job(plan())

    def delete_qa_result(self, result_id: str) -> Job[bool]:
        """Delete a QA result for good; False when there was none."""

        def plan() -> Plan[bool]:
            gone: list[str] = yield Call("purge", (QA_RESULT, [result_id]))
            return bool(gone)

        return Job(plan())


class _Conversation:
    """A conversation handed to a save, validated and dumped only as far as needed."""

    def __init__(self, spec: Kind[Any], name: str, messages: Sequence[Any]) -> None:
        self.spec = spec
        self.name = name
        self.messages = list(messages)
        self._valid: dict[int, Any] = {}
        self._canon: dict[int, bytes] = {}
        self._raw: list[bytes | None] = []

    def __len__(self) -> int:
        return len(self.messages)

    def _validate(self, index: int) -> Any:
        if index not in self._valid:
            try:
                self._valid[index] = self.spec.adapter.validate_python(self.messages[index])
            except ValidationError as exc:
                errors = [{**e, "loc": (index, *e["loc"])} for e in exc.errors(include_url=False)]
                raise DocumentInvalid(CONVERSATION, self.name, None, errors, f"message {index}") from None
        return self._valid[index]

    def validated(self, start: int, stop: int) -> list[Any]:
        """Messages ``start:stop``, validated (DocumentInvalid names the first bad index)."""
        return [self._validate(i) for i in range(start, stop)]

    def canonical(self, start: int = 0, stop: int | None = None) -> list[bytes]:
        """The canonical JSON of messages ``start:stop`` (validated first)."""
        stop = len(self.messages) if stop is None else stop
        for i in range(start, stop):
            if i not in self._canon:
                self._canon[i] = _canonical(self.spec.adapter, self._validate(i))
        return [self._canon[i] for i in range(start, stop)]

    def has_prefix(self, count: int, digest: bytes) -> bool:
        """True when the first ``count`` messages hash to ``digest``.

        Tried first on the messages as given, dumped with sorted keys and not validated:
        a host passing back what it saved or loaded matches at the cost of one orjson
        dump per message. Only when that differs are they validated and compared again.
        """
        if count > len(self.messages):
            return False
        raw = [_raw_canonical(m) for m in self.messages[:count]]
        self._raw = raw
        if all(r is not None for r in raw) and _chain(b"", raw) == digest:  # type: ignore[arg-type]
            return True
        return _chain(b"", self.canonical(0, count)) == digest

    def raw_copies(self, start: int = 0) -> list[bytes] | None:
        """Messages ``start:`` as given, as JSON, to recognise them when they are handed back
        (the host may mutate its own objects); None if one is not a plain dict of JSON
        data. Reuses the dumps :meth:`has_prefix` made."""
        copies = []
        for i in range(start, len(self.messages)):
            message = self.messages[i]
            if type(message) is not dict:
                return None
            raw = self._raw[i] if i < len(self._raw) else None
            if raw is None:
                try:
                    raw = orjson.dumps(message)
                except TypeError:
                    return None
            copies.append(raw)
        return copies


def _raw_canonical(message: Any) -> bytes | None:
    """A message's JSON as given, keys sorted; None when it is not plain JSON data."""
    # type() first: isinstance against pydantic's ABC metaclass costs more than the dump.
    if type(message) is not dict and isinstance(message, BaseModel):
        message = message.model_dump(mode="json")
    try:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def register_kinds(registry: Registry) -> None:
    """Add the layer's kinds (:func:`agent_registry`) where they are missing.

    A kind the caller registered already is left as it is.
    """
    for kind in agent_registry():
        if kind.name not in registry:
            registry.add(kind)


def _outcome(
    landed: dict[tuple[str, int], int], meta: Mapping[str, Any], count: int, exc: OutcomeUnknown
) -> OutcomeUnknown:
    """Remember the hash chain and version a write of unknown outcome left, if it landed."""
    landed[(meta["history_digest"], meta["history_digest_version"])] = count
    return exc


def _landed(
    head: Doc[Any] | None, meta: Mapping[str, Any], landed: Mapping[tuple[str, int], int]
) -> int | None:
    """How many messages an earlier attempt wrote, when the head shows it committed."""
    if head is None or not landed or not _digest_current(head, meta):
        return None
    return landed.get((meta["history_digest"], head.version))


def _digest_current(head: Doc[Any], meta: Mapping[str, Any]) -> bool:
    """True when the head's hash chain describes its current version."""
    return meta.get("history_digest_version") == head.version and isinstance(meta.get("history_digest"), str)


def _then(plan: Plan[Any], value: T) -> Plan[T]:
    """Run ``plan``, then give ``value``."""
    yield from plan
    return value


def _kind_of(type_name: str) -> str | None:
    try:
        return resolve_config_kind(type_name)
    except KeyError:
        return None


def _cas(head: Doc[Any] | None) -> int | None:
    """The expected_version of a write after reading ``head``: 0 (must not exist) when
    there was none; none at all for a head holding no item yet (version 0, which
    expected_version cannot name)."""
    if head is None:
        return 0
    return head.version or None


def _done(value: T) -> Plan[T]:
    """A plan that makes no call."""
    return value
    yield  # pragma: no cover - makes this a generator
