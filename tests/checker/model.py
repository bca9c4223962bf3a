"""The model: what a history says must be true of the store, worked out from its calls.

* An **effect** is a write that surely committed: an acknowledged put, append or delete,
  or the first acknowledged attempt of a keyed write. A retry answered from its key (the
  first attempt committed, and nothing has made the store forget the key since) writes
  nothing and is no effect. A keyed write after its key was surely forgotten (a purge of
  its document, a prune by age of its kind) is a new write.
* A **remover** of a document is a call that may make it unreadable or start its versions
  again: a delete, a purge, a prune of its kind (whatever their outcome, but a sure failure
  of a single statement).
* Where a forgetting of keys overlaps the attempts of a keyed write, the model cannot
  tell which attempt wrote what: those calls are **uncertain**, and no property expects
  anything of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .history import Call, History
from .ops import LOG, SNAPSHOT, Append, Delete, Prune, Purge, Put, Retry, Transaction, Write, written


@dataclass(frozen=True)
class Effect:
    """A committed write as the feed reports it; ``version`` None matches any version.
    It committed between ``start`` (its first attempt's start) and ``end``."""

    kind: str
    name: str
    op: str
    version: int | None
    start: float
    end: float
    host: str
    call: Call

    def matches(self, kind: str, name: str, op: str, version: int) -> bool:
        return (self.kind, self.name, self.op) == (kind, name, op) and self.version in (None, version)


def host_of(call: Call) -> str:
    host = getattr(call.op, "host", "")
    return host if isinstance(host, str) else ""


def _single_statement(call: Call) -> bool:
    return isinstance(call.op, Put | Append | Delete | Retry | Purge | Transaction)


def _doc_of(write: Write) -> tuple[str, str]:
    return written(write)[0]


class Model:
    """Effects, removers, answers from keys and uncertain calls of one history."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.effects: list[Effect] = []
        self.cached: dict[int, Call] = {}  # a retry answered from its key -> the attempt that wrote
        self.uncertain: set[int] = set()
        self._first_start: dict[int, float] = {}  # an effect that may have begun earlier
        self._removers: dict[tuple[str, str], list[Call]] = defaultdict(list)
        self._kind_removers: dict[str, list[Call]] = defaultdict(list)
        for call in history.calls:
            self._note_remover(call)
        self._keyed()
        for call in history.calls:
            if call.index not in self.cached and call.index not in self.uncertain:
                self._note_effect(call)

    # --- removers --------------------------------------------------------------------

    def _note_remover(self, call: Call) -> None:
        if _single_statement(call) and not call.may_have_happened:
            return
        op = call.op.original if isinstance(call.op, Retry) else call.op
        if isinstance(op, Delete):
            self._removers[(op.kind, op.name)].append(call)
        elif isinstance(call.op, Purge):
            for name in call.op.names:
                self._removers[(call.op.kind, name)].append(call)
        elif isinstance(call.op, Prune):
            self._kind_removers[call.op.kind].append(call)

    def removers(self, kind: str, name: str) -> list[Call]:
        return self._removers[(kind, name)] + self._kind_removers[kind]

    def removed_between(self, kind: str, name: str, start: float, end: float) -> bool:
        """Whether a remover of the document may have run between ``start`` and ``end``."""
        return any(m.start < end and m.end > start for m in self.removers(kind, name))

    # --- keyed writes ----------------------------------------------------------------

    def _forgetters(self, write: Write) -> list[tuple[Call, float]]:
        """Calls that make the store forget ``write``'s key, each with the moment before
        which a key must have been written to be surely forgotten."""
        kind, name = _doc_of(write)
        found: list[tuple[Call, float]] = []
        for call in self.history.calls:
            if isinstance(call.op, Purge) and call.op.kind == kind and name in call.op.names:
                found.append((call, call.start))
            elif isinstance(call.op, Prune) and call.op.kind == kind and call.op.older_than_ms is not None:
                found.append((call, call.start - call.op.older_than_ms / 1000))
        return found

    def key_forgotten_between(self, write: Write, start: float, end: float) -> bool:
        """Whether the store may have forgotten ``write``'s key between the two moments
        (a retry after that writes again, as docs/reliability.md says)."""
        return any(f.start < end and f.end > start for f, _ in self._forgetters(write))

    def _keyed(self) -> None:
        attempts: dict[str, list[Call]] = defaultdict(list)
        for call in self.history.calls:
            write = call.op.original if isinstance(call.op, Retry) else call.op
            if isinstance(write, Put | Append | Delete) and write.key is not None:
                attempts[write.key].append(call)
        for calls in attempts.values():
            self._walk_key(sorted(calls, key=lambda c: c.start))

    def _walk_key(self, calls: list[Call]) -> None:
        """Follow one key through its attempts: which wrote, which were answered from it."""
        write = calls[0].op.original if isinstance(calls[0].op, Retry) else calls[0].op
        assert isinstance(write, Put | Append | Delete)
        forgetters = self._forgetters(write)
        seen: set[int] = set()
        holder: Call | None = None  # the acknowledged attempt the key answers with
        maybe: list[Call] = []  # attempts of unknown outcome since the key was last empty
        last_end = float("-inf")
        tainted = False  # a forgetting overlapped an attempt: later ones are uncertain
        for n, call in enumerate(calls):
            for forgetter, before in forgetters:
                if forgetter.index in seen or forgetter.start >= call.end:
                    continue
                seen.add(forgetter.index)
                if n == 0:
                    tainted = tainted or forgetter.end > call.start
                    continue
                sure = forgetter.ok and last_end < min(forgetter.start, before) and forgetter.end < call.start
                tainted = tainted or not sure
                holder, maybe = None, []
            if tainted and n > 0:
                self.uncertain.update(c.index for c in calls[n:])
                return
            last_end = max(last_end, call.end)
            if call.outcome == "unknown" and holder is None:
                maybe.append(call)
            elif call.ok and holder is not None:
                self.cached[call.index] = holder
            elif call.ok:
                holder = call
                if maybe:
                    # Written by an earlier attempt whose reply was lost, or by this one.
                    self._first_start[call.index] = maybe[0].start
                maybe = []

    # --- effects ---------------------------------------------------------------------

    def _note_effect(self, call: Call) -> None:
        if not call.ok:
            return
        op = call.op.original if isinstance(call.op, Retry) else call.op
        start = self._first_start.get(call.index, call.start)
        host = host_of(call)

        def add(kind: str, name: str, change: str, version: int | None) -> None:
            self.effects.append(Effect(kind, name, change, version, start, call.end, host, call))

        if isinstance(op, Put):
            add(SNAPSHOT, op.name, "put", call.result.version)
        elif isinstance(op, Append):
            add(LOG, op.name, "append", int(call.result))
        elif isinstance(op, Delete):
            add(op.kind, op.name, "delete", int(call.result))
        elif isinstance(op, Transaction):
            for put, version in zip(op.puts, call.result, strict=True):
                add(SNAPSHOT, put.name, "put", version)
        elif isinstance(op, Purge):
            for name in call.result:
                add(op.kind, name, "purge", None)

    def effects_on(self, kind: str, name: str) -> list[Effect]:
        return [e for e in self.effects if (e.kind, e.name) == (kind, name)]
