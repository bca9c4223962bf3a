"""Session history, the I/O-free part: a conversation handed to a save, the hash chain of
its messages, what a manager remembers of its last write, and the head's metadata.

The head's metadata keeps ``history_digest``, a SHA-256 chain over the canonical JSON of
the live messages, and ``history_digest_version``, the version it describes: a save checks
that the stored messages are a prefix of its conversation with one head read and no item
read. The chain each attempt writes is also the manager's idempotency key: after a lost
reply, a head holding it at its version means that attempt committed (:func:`committed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from docstore.doc import Doc
from docstore.errors import DocumentInvalid, OutcomeUnknown
from docstore.kinds import BaseKind

from ._settings import CONVERSATION

__all__ = [
    "SAVE_ATTEMPTS",
    "Conversation",
    "Known",
    "KnownCache",
    "canonical",
    "cas",
    "chain",
    "committed",
    "digest_current",
    "next_meta",
    "note_unknown",
    "store_meta",
    "validate_messages",
]

SAVE_ATTEMPTS = 8
"""How often a save looks again after another writer got in between (or a lost reply)."""

_KNOWN_LIMIT = 1024


def canonical(adapter: Any, message: Any) -> bytes:
    """A validated message's JSON, as the hash chain covers it."""
    # Sorted keys: jsonb reorders keys, so bytes read back must compare equal to bytes
    # dumped before the write.
    data = adapter.dump_python(message, mode="json")
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # orjson stops at 64-bit integers, which JSON and jsonb do not; the standard
        # library dumps them (only such messages come here, so no chain changes).
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain(start: bytes, canon: Iterable[bytes]) -> bytes:
    """The hash chain ``start`` continued over ``canon``."""
    digest = start
    for item in canon:
        digest = hashlib.sha256(digest + item).digest()
    return digest


def store_meta(meta: Any) -> dict[str, Any]:
    """A head's metadata as a plain dict."""
    if isinstance(meta, BaseModel):
        # Not exclude_none: it would reach into a saved execution result and drop its nulls.
        return meta.model_dump(mode="json")
    return dict(meta) if isinstance(meta, Mapping) else {}


def next_meta(
    head: Doc[Any] | None, given: Mapping[str, Any], replace: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The head's metadata (empty without a head) and the metadata to write over it.

    A ``None`` in ``given`` leaves the stored key as it is, unless the key is in
    ``replace`` (then it is cleared). A new head of an agent's session is named for it.
    """
    old_meta = store_meta(head.data) if head is not None else {}
    meta = {**old_meta, **{k: v for k, v in given.items() if v is not None}}
    for key in replace:
        if given.get(key) is None:
            meta.pop(key, None)
    meta = {k: v for k, v in meta.items() if v is not None}
    if head is None and "result_type" not in meta and meta.get("agent_name"):
        meta.update(name=meta["agent_name"], result_type="agent")
    return old_meta, meta


def validate_messages(spec: BaseKind[Any], name: str, conversation: Sequence[Any]) -> list[Any]:
    """Every message validated (DocumentInvalid names the first bad index)."""
    out = []
    for index, message in enumerate(conversation):
        try:
            out.append(spec.adapter.validate_python(message))
        except ValidationError as exc:
            errors = [{**e, "loc": (index, *e["loc"])} for e in exc.errors(include_url=False)]
            raise DocumentInvalid(CONVERSATION, name, None, errors, f"message {index}") from None
    return out


def note_unknown(
    attempts: dict[tuple[str, int], int], meta: Mapping[str, Any], count: int, exc: OutcomeUnknown
) -> OutcomeUnknown:
    """Remember the hash chain and version a write of unknown outcome left, if it landed."""
    attempts[(meta["history_digest"], meta["history_digest_version"])] = count
    return exc


def committed(
    head: Doc[Any] | None, meta: Mapping[str, Any], attempts: Mapping[tuple[str, int], int]
) -> int | None:
    """How many messages an earlier attempt wrote, when the head shows it committed."""
    if head is None or not attempts or not digest_current(head, meta):
        return None
    return attempts.get((meta["history_digest"], head.version))


def digest_current(head: Doc[Any], meta: Mapping[str, Any]) -> bool:
    """True when the head's hash chain describes its current version."""
    return meta.get("history_digest_version") == head.version and isinstance(meta.get("history_digest"), str)


def cas(head: Doc[Any] | None) -> int | None:
    """The expected_version of a write after reading ``head``: 0 (must not exist) when
    there was none; none at all for a head holding no item yet (version 0, which
    expected_version cannot name)."""
    if head is None:
        return 0
    return head.version or None


@dataclass(slots=True)
class Known:
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


class KnownCache:
    """:class:`Known` by conversation name: per process, bounded; a wrong entry only costs
    one VersionConflict, then a read."""

    def __init__(self) -> None:
        self._known: dict[str, Known] = {}

    def get(self, name: str) -> Known | None:
        return self._known.get(name)

    def remember(self, name: str, known: Known | None) -> None:
        """Hold ``known`` for ``name``; None forgets it."""
        self._known.pop(name, None)
        if known is not None:
            if len(self._known) >= _KNOWN_LIMIT:
                del self._known[next(iter(self._known))]
            self._known[name] = known

    def clear(self) -> None:
        self._known.clear()


class Conversation:
    """A conversation handed to a save, validated and dumped only as far as needed."""

    def __init__(self, spec: BaseKind[Any], name: str, messages: Sequence[Any]) -> None:
        self.spec = spec
        self.name = name
        self.messages = list(messages)
        self._valid: dict[int, Any] = {}
        self._canon: dict[int, bytes] = {}
        self._raw: list[bytes | None] = []
        # Each validated message's JSON as given, dumped when it was validated: what a save
        # remembers as written must be what it validated and wrote, not what the host's
        # objects became over a retry's awaits.
        self._given: dict[int, bytes | None] = {}

    def __len__(self) -> int:
        return len(self.messages)

    def _validate(self, index: int) -> Any:
        if index not in self._valid:
            try:
                self._valid[index] = self.spec.adapter.validate_python(self.messages[index])
            except ValidationError as exc:
                errors = [{**e, "loc": (index, *e["loc"])} for e in exc.errors(include_url=False)]
                raise DocumentInvalid(CONVERSATION, self.name, None, errors, f"message {index}") from None
            self._given[index] = _dump_given(self.messages[index])
        return self._valid[index]

    def validated(self, start: int, stop: int) -> list[Any]:
        """Messages ``start:stop``, validated (DocumentInvalid names the first bad index)."""
        return [self._validate(i) for i in range(start, stop)]

    def canonical(self, start: int = 0, stop: int | None = None) -> list[bytes]:
        """The canonical JSON of messages ``start:stop`` (validated first)."""
        stop = len(self.messages) if stop is None else stop
        for i in range(start, stop):
            if i not in self._canon:
                self._canon[i] = canonical(self.spec.adapter, self._validate(i))
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
        if all(r is not None for r in raw) and chain(b"", raw) == digest:  # type: ignore[arg-type]
            return True
        return chain(b"", self.canonical(0, count)) == digest

    def raw_copies(self, start: int = 0) -> list[bytes] | None:
        """Messages ``start:`` as given, as JSON, to recognise them when they are handed back
        (the host may mutate its own objects); None if one is not a plain dict of JSON
        data. A validated message's is its JSON when it was validated; the others reuse
        the dumps :meth:`has_prefix` made."""
        copies = []
        for i in range(start, len(self.messages)):
            message = self.messages[i]
            if type(message) is not dict:
                return None
            if i in self._given:
                raw = self._given[i]
            else:
                raw = self._raw[i] if i < len(self._raw) else None
                if raw is None:
                    raw = _dump_given(message)
            if raw is None:
                return None
            copies.append(raw)
        return copies


def _dump_given(message: Any) -> bytes | None:
    """A plain dict message's JSON as given; None for anything else."""
    if type(message) is not dict:
        return None
    try:
        return orjson.dumps(message)
    except TypeError:
        return None


def _raw_canonical(message: Any) -> bytes | None:
    """A message's JSON as given, keys sorted; None when it is not plain JSON data."""
    # type() first: isinstance against pydantic's ABC metaclass costs more than the dump.
    if type(message) is not dict and isinstance(message, BaseModel):
        message = message.model_dump(mode="json")
    try:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
