"""The operations a history is made of, as plain data.

A plan is a list of steps; the operations of one step run at the same time, each on a
thread of its own, and the next step starts when they have all returned. Operations are
frozen dataclasses holding everything they need (a retry holds the write it retries), so
that any subset of a plan is a plan too: the shrinker drops steps and operations freely.
"""

from __future__ import annotations

from dataclasses import dataclass

SNAPSHOT = "llm"
"""The snapshot kind of the histories: a config kind, so that a config watch follows it."""
LOG = "chat"
"""The log kind of the histories."""


@dataclass(frozen=True)
class Put:
    """``put`` of a value holding a token no other write has."""

    host: str
    name: str
    token: int
    expected_version: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        cas = "" if self.expected_version is None else f" expected_version={self.expected_version}"
        return f"{self.host}: put {SNAPSHOT}/{self.name} token={self.token}{cas}{_key(self.key)}"


@dataclass(frozen=True)
class Append:
    """``append`` of ``items`` items, each holding the token and its place."""

    host: str
    name: str
    token: int
    items: int = 1
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.host}: append {LOG}/{self.name} token={self.token} items={self.items}{_key(self.key)}"


@dataclass(frozen=True)
class Delete:
    """``delete`` of a snapshot or a log."""

    host: str
    kind: str
    name: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.host}: delete {self.kind}/{self.name}{_key(self.key)}"


Write = Put | Append | Delete


@dataclass(frozen=True)
class Retry:
    """A keyed write sent again, as it was, from ``host`` (after a lost reply, or not)."""

    host: str
    original: Write

    def __str__(self) -> str:
        return f"{self.host}: retry of [{self.original}]"


@dataclass(frozen=True)
class Transaction:
    """Several puts in one ``store.transaction()`` block."""

    host: str
    puts: tuple[Put, ...]

    def __str__(self) -> str:
        inner = "; ".join(f"{p.name} token={p.token}" for p in self.puts)
        return f"{self.host}: transaction [{inner}]"


@dataclass(frozen=True)
class Get:
    """``get`` of the current document (a log's head)."""

    host: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.host}: get {self.kind}/{self.name}"


@dataclass(frozen=True)
class Purge:
    host: str
    kind: str
    names: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.host}: purge {self.kind} {list(self.names)}"


@dataclass(frozen=True)
class Prune:
    """``prune(kind, keep_last=, older_than=)``; older_than also forgets the kind's keys."""

    host: str
    kind: str
    keep_last: int | None = None
    older_than_ms: int | None = None

    def __str__(self) -> str:
        return f"{self.host}: prune {self.kind} keep_last={self.keep_last} older_than={self.older_than_ms}ms"


@dataclass(frozen=True)
class PruneVersions:
    host: str
    kind: str
    keep_last: int

    def __str__(self) -> str:
        return f"{self.host}: prune_versions {self.kind} keep_last={self.keep_last}"


@dataclass(frozen=True)
class PruneChanges:
    host: str
    older_than_ms: int
    batch_size: int = 5000

    def __str__(self) -> str:
        return f"{self.host}: prune_changes older_than={self.older_than_ms}ms batch_size={self.batch_size}"


@dataclass(frozen=True)
class Copy:
    """``export`` piped into ``import_lines`` of a fresh schema, then exported again."""

    host: str

    def __str__(self) -> str:
        return f"{self.host}: export | import into a fresh schema"


@dataclass(frozen=True)
class FeedStop:
    consumer: str

    def __str__(self) -> str:
        return f"{self.consumer}: stop, keeping its cursor"


@dataclass(frozen=True)
class FeedResume:
    consumer: str

    def __str__(self) -> str:
        return f"{self.consumer}: resume from its saved cursor"


@dataclass(frozen=True)
class FeedRestart:
    """A consumer starting over: a fresh ``change_cursor()``."""

    consumer: str

    def __str__(self) -> str:
        return f"{self.consumer}: start over from change_cursor()"


@dataclass(frozen=True)
class FeedReplay:
    """Resume a second feed from ``count`` cursors the consumer saved (picked by
    ``pick``): each must deliver what the consumer got after it, or raise ChangesPruned."""

    consumer: str
    count: int
    pick: int

    def __str__(self) -> str:
        return f"{self.consumer}: replay from {self.count} of its saved cursors (pick {self.pick})"


@dataclass(frozen=True)
class BadCursor:
    host: str
    cursor: str
    why: str

    def __str__(self) -> str:
        return f"{self.host}: changes(after={_cut(self.cursor)!r})  # {self.why}"


@dataclass(frozen=True)
class BadImport:
    """Import of an export whose line ``line`` was spoiled by ``mutation``."""

    host: str
    mutation: str
    line: int

    def __str__(self) -> str:
        return f"{self.host}: import with line {self.line} spoiled ({self.mutation})"


@dataclass(frozen=True)
class BadDsn:
    """A DSN holding ``password`` that libpq cannot parse or cannot reach, given to
    ``entry`` (connect, read_dsn, listen_dsn, watch_listen_dsn)."""

    host: str
    entry: str
    dsn: str
    password: str

    def __str__(self) -> str:
        return f"{self.host}: {self.entry}={self.dsn!r}"


@dataclass(frozen=True)
class YamlFile:
    """The ``docstore`` command given a YAML file whose aliases expand to ``nodes``."""

    entry: str
    text: str
    nodes: int

    def __str__(self) -> str:
        return f"docstore {self.entry} of a {len(self.text)}-byte YAML file expanding to {self.nodes} nodes"


@dataclass(frozen=True)
class Fault:
    """A fault injected: lose-reply, kill-connections, cut, heal, pause-replay,
    resume-replay, crash-primary, hold-xid, release-xid, move."""

    what: str

    def __str__(self) -> str:
        return f"nemesis: {self.what}"


Op = (
    Put
    | Append
    | Delete
    | Retry
    | Transaction
    | Get
    | Purge
    | Prune
    | PruneVersions
    | PruneChanges
    | Copy
    | FeedStop
    | FeedResume
    | FeedRestart
    | FeedReplay
    | BadCursor
    | BadImport
    | BadDsn
    | YamlFile
    | Fault
)
Step = tuple[Op, ...]
Plan = list[Step]

WRITES = (Put, Append, Delete, Retry, Transaction)


def written(op: Op) -> list[tuple[str, str]]:
    """The documents (kind, name) a write operation writes."""
    if isinstance(op, Retry):
        op = op.original
    if isinstance(op, Put):
        return [(SNAPSHOT, op.name)]
    if isinstance(op, Append):
        return [(LOG, op.name)]
    if isinstance(op, Delete):
        return [(op.kind, op.name)]
    if isinstance(op, Transaction):
        return [(SNAPSHOT, p.name) for p in op.puts]
    return []


def _key(key: str | None) -> str:
    return "" if key is None else f" key={key}"


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"
