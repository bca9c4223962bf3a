"""The properties a history is checked against, each small and named.

Each takes the run's :class:`Record` and returns what it found wrong, one line per
violation. ``PROPERTIES`` lists them with the promise each holds (docs/reliability.md
names them too).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from docstore import (
    ChangesPruned,
    DatabaseUnavailable,
    DocStoreError,
    DocumentNotFound,
    VersionConflict,
)

from . import hostile
from .history import Call, Final, History, Segment
from .model import Effect, Model
from .ops import (
    Append,
    BadCursor,
    BadDsn,
    BadImport,
    Copy,
    Delete,
    FeedReplay,
    Get,
    Plan,
    Prune,
    PruneChanges,
    PruneVersions,
    Purge,
    Put,
    Retry,
    Transaction,
    YamlFile,
)


@dataclass
class Record:
    """A run: its plan, what happened, and what it found at the end."""

    scenario: str
    seed: int
    plan: Plan
    history: History
    final: Final
    primary_readers: set[str]
    moves: list[tuple[float, float]] = field(default_factory=list)  # when each move began and ended
    model: Model = field(init=False)

    def __post_init__(self) -> None:
        self.model = Model(self.history)


Check = Callable[[Record], Iterator[str]]


@dataclass(frozen=True)
class Property:
    name: str
    promise: str
    check: Check


# --- reads ---------------------------------------------------------------------------


def _read_version(call: Call) -> int | None:
    """The version a get saw (0: not found), or None when it failed otherwise."""
    if call.ok:
        return int(call.result.version)
    return 0 if isinstance(call.error, DocumentNotFound) else None


def _stale_reads(record: Record, own_only: bool) -> Iterator[str]:
    model = record.model
    for read in record.history.calls:
        if not isinstance(read.op, Get):
            continue
        reader = read.op.host
        if (reader in record.primary_readers) == own_only:
            continue
        seen = _read_version(read)
        if seen is None:
            continue
        for effect in model.effects_on(read.op.kind, read.op.name):
            if effect.op not in ("put", "append") or effect.version is None or effect.end >= read.start:
                continue
            if own_only and effect.host != reader:
                continue
            if model.removed_between(effect.kind, effect.name, effect.start, read.end):
                continue
            if seen < effect.version:
                yield (
                    f"call {read.index} ({read.op}) saw version {seen} after call {effect.call.index} "
                    f"({effect.call.op}) was acknowledged at version {effect.version}, and nothing removed it"
                )


def acknowledged_writes_readable(record: Record) -> Iterator[str]:
    yield from _stale_reads(record, own_only=False)


def reads_own_writes(record: Record) -> Iterator[str]:
    yield from _stale_reads(record, own_only=True)


def keyed_retry_answers_as_first(record: Record) -> Iterator[str]:
    for index, holder in record.model.cached.items():
        retry = record.history.calls[index]
        if _answer(retry) != _answer(holder):
            yield (
                f"call {retry.index} ({retry.op}) answered {_answer(retry)}, but the attempt that wrote "
                f"(call {holder.index}) answered {_answer(holder)}"
            )


def _written_again(record: Record, attempts: list[Call]) -> bool:
    """Whether a retry of these attempts came after their key may have been forgotten,
    and so was a new write."""
    first = attempts[0].op.original if isinstance(attempts[0].op, Retry) else attempts[0].op
    if not isinstance(first, Put | Append) or first.key is None:
        return False
    start, end = min(c.start for c in attempts), max(c.end for c in attempts)
    return record.model.key_forgotten_between(first, start, end)


def _answer(call: Call) -> Any:
    return getattr(call.result, "version", call.result)


def at_most_once(record: Record) -> Iterator[str]:
    attempts: dict[int, list[Call]] = defaultdict(list)
    for call in record.history.calls:
        op = call.op.original if isinstance(call.op, Retry) else call.op
        if isinstance(op, Put | Append):
            attempts[op.token].append(call)
        elif isinstance(op, Transaction):
            for put in op.puts:
                attempts[put.token].append(call)
    for (token, item), count in sorted(record.final.tokens.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        what = f"token {token}" + ("" if item is None else f" item {item}")
        if count > 1 and not _written_again(record, attempts[token]):
            yield f"{what} is stored {count} times: {_calls(attempts[token])}"
        failed = attempts.get(token, [])
        if failed and all(c.outcome == "fail" for c in failed):
            yield f"{what} is stored, but every call that sent it failed: {_calls(failed)}"


# --- the feed ------------------------------------------------------------------------


def _expected(record: Record, segment: Segment) -> list[Effect]:
    return [e for e in record.model.effects if e.start > segment.start]


def missing_deliveries(record: Record, segment: Segment) -> list[Effect]:
    """The effects the segment must have delivered and has not (a segment that ended,
    by an error or a start over, owes nothing)."""
    if not segment.open:
        return []
    delivered = Counter((d.kind, d.name, d.op, d.version) for d in segment.deliveries)
    missing = []
    for effect in sorted(_expected(record, segment), key=lambda e: e.version is None):
        match = next((key for key in delivered if delivered[key] and effect.matches(*key)), None)
        if match is None:
            missing.append(effect)
        else:
            delivered[match] -= 1
    return missing


def feed_delivers_every_write(record: Record) -> Iterator[str]:
    for segment in record.history.segments:
        missing = missing_deliveries(record, segment)
        if missing:
            shown = "; ".join(
                f"call {e.call.index} ({e.op} {e.kind}/{e.name} v{e.version})" for e in missing[:5]
            )
            yield (
                f"{segment.consumer} (segment {segment.index}, cursor {segment.cursor!r} taken at "
                f"{segment.start:.3f}) never got {len(missing)} committed writes: {shown}"
            )


def feed_delivers_once(record: Record) -> Iterator[str]:
    consumers = {s.consumer for s in record.history.segments}
    for consumer in sorted(consumers):
        counts = Counter(d.identity for d in record.history.deliveries(consumer))
        twice = [identity for identity, n in counts.items() if n > 1]
        if twice:
            yield f"{consumer} got {len(twice)} changes more than once: {twice[:3]}"


def feed_in_order_per_document(record: Record) -> Iterator[str]:
    for segment in record.history.segments:
        last: dict[tuple[str, str], int] = {}
        for d in segment.deliveries:
            key = (d.kind, d.name)
            before = last.get(key)
            ahead = d.op in ("put", "append", "rewrite", "revert")
            if before is not None and (d.version < before or (ahead and d.version == before)):
                yield (
                    f"{segment.consumer} (segment {segment.index}) got {d.kind}/{d.name} {d.op} "
                    f"version {d.version} after version {before}"
                )
            if d.op in ("purge", "prune", "import"):
                last.pop(key, None)  # a purged document may start again at version 1
            else:
                last[key] = d.version


def feed_refuses_only_for_cause(record: Record) -> Iterator[str]:
    prunes = [c for c in record.history.calls if isinstance(c.op, PruneChanges)]
    for segment in record.history.segments:
        error = segment.ended
        if error is None:
            continue
        if isinstance(error, ChangesPruned):
            if not any(p.end > segment.start and p.start < segment.end for p in prunes):
                yield (
                    f"{segment.consumer}: a feed from a cursor taken at {segment.start:.3f} raised "
                    f"ChangesPruned at {segment.end:.3f}, though no prune_changes ran in between ({error})"
                )
        elif not any(segment.start < end and began < segment.end for began, end in record.moves):
            yield f"{segment.consumer}: the feed raised {type(error).__name__}: {error}"


def feed_resumes_from_any_saved_cursor(record: Record) -> Iterator[str]:
    for call in record.history.calls:
        if not (isinstance(call.op, FeedReplay) and call.ok):
            continue
        moved = any(began < call.start for began, _ in record.moves)  # a cursor of another cluster
        for replay in call.result:
            if isinstance(replay.error, ChangesPruned) or (moved and isinstance(replay.error, DocStoreError)):
                continue
            if replay.error is not None:
                yield (
                    f"call {call.index}: resuming {replay.consumer} from its change {replay.position} "
                    f"raised {replay.error!r}"
                )
                continue
            agree = replay.got[: len(replay.reference)] == replay.reference[: len(replay.got)]
            if not agree or len(replay.got) < len(replay.reference):
                yield (
                    f"call {call.index}: resuming {replay.consumer} (segment {replay.segment}) after its "
                    f"change {replay.position} delivered {_changes(replay.got)} where the consumer had "
                    f"got {_changes(replay.reference)}, and raised no ChangesPruned"
                )


def _changes(identities: list[tuple[Any, ...]], limit: int = 4) -> str:
    shown = ", ".join(f"{k}/{n} {op} v{v}" for k, n, v, op, _ in identities[:limit])
    more = f" ... ({len(identities)} in all)" if len(identities) > limit else ""
    return f"[{shown}{more}]"


# --- the store at the end --------------------------------------------------------------


def purge_leaves_no_trace(record: Record) -> Iterator[str]:
    for (kind, name), rows in sorted(record.final.traces.items()):
        yield f"{kind}/{name} was purged, nothing written to it since, yet the store keeps {', '.join(rows)}"


def config_watch_converges(record: Record) -> Iterator[str]:
    final = record.final
    if final.watched is None:
        return
    if final.watch_error is not None:
        yield f"the config watch stopped: {final.watch_error}"
    wrong = {
        name: (final.watched.get(name), model)
        for name, model in final.stored.items()
        if final.watched.get(name) != model
    }
    extra = sorted(set(final.watched) - set(final.stored))
    if wrong or extra:
        shown = "; ".join(f"{n}: holds {h!r}, stored {s!r}" for n, (h, s) in sorted(wrong.items()))
        yield f"the config watch never caught up: {shown}" + (f"; holds removed {extra}" if extra else "")


def copy_is_identical(record: Record) -> Iterator[str]:
    for call in record.history.calls:
        if isinstance(call.op, Copy) and call.ok and call.result["first_difference"] is not None:
            line = call.result["first_difference"]
            yield f"call {call.index}: export | import | export differs at line {line}"


# --- errors and hostile input ------------------------------------------------------------

_ALLOWED: list[tuple[tuple[type, ...], tuple[type[BaseException], ...]]] = [
    ((Put, Append, Retry), (VersionConflict, DatabaseUnavailable)),
    ((Delete,), (VersionConflict, DatabaseUnavailable, DocumentNotFound)),
    ((Get,), (DocumentNotFound, DatabaseUnavailable)),
    # A BadImport's error is its export's (a refused import is its result).
    (
        (Transaction, Purge, Prune, PruneVersions, PruneChanges, Copy, FeedReplay, BadImport),
        (DatabaseUnavailable,),
    ),
]


def errors_are_documented(record: Record) -> Iterator[str]:
    for call in record.history.calls:
        if call.error is None:
            continue
        op = call.op.original if isinstance(call.op, Retry) else call.op
        for ops, errors in _ALLOWED:
            if isinstance(op, ops) and not isinstance(call.error, errors):
                yield f"call {call.index} ({call.op}) raised {type(call.error).__name__}: {call.error}"
    for segment in record.history.segments:
        for _, error in segment.errors:
            if not isinstance(error, DatabaseUnavailable):
                yield f"{segment.consumer}'s feed raised {type(error).__name__}: {error}"


def no_secret_shown(record: Record) -> Iterator[str]:
    secrets = record.final.secrets
    for call in record.history.calls:
        errors = [call.error]
        if isinstance(call.result, hostile.Refusal):
            errors.append(call.result.error)
        elif isinstance(call.result, hostile.SpoiledImport):
            errors.append(call.result.refusal.error)
        for error in errors:
            shown = hostile.secret_in(error, [], secrets)
            if shown is not None:
                yield f"call {call.index} ({call.op}): the error shows the password {shown!r}: {error!r}"
    for segment in record.history.segments:
        for error in [segment.ended, *(e for _, e in segment.errors)]:
            shown = hostile.secret_in(error, [], secrets)
            if shown is not None:
                yield f"{segment.consumer}'s feed error shows the password {shown!r}"
    for line in record.final.logs:
        shown = hostile.secret_in(None, [line], secrets)
        if shown is not None:
            yield f"a log line shows the password {shown!r}: {line[:300]}"


def bad_input_refused(record: Record) -> Iterator[str]:
    for call in record.history.calls:
        op, result = call.op, call.result
        if call.error is not None and isinstance(op, BadCursor | BadDsn | YamlFile):
            yield f"call {call.index} ({op}) failed in the checker: {call.error!r}"
            continue
        found: str | None = None
        if isinstance(op, BadCursor):
            found = hostile.judge_cursor(op.cursor, result)
        elif isinstance(op, BadImport) and result is not None:
            found = hostile.judge_import(result)
        elif isinstance(op, BadDsn):
            error = result.error
            if error is not None and not isinstance(error, DocStoreError):
                found = f"raised {type(error).__name__}, not a docstore error: {error}"
            elif error is None and op.entry in ("connect", "listen_dsn"):
                found = f"took a DSN it cannot use ({result.detail})"
        elif isinstance(op, YamlFile):
            found = hostile.judge_yaml(op.nodes, result)
        if found is not None:
            yield f"call {call.index} ({op}): {found}"


PROPERTIES = [
    Property(
        "acknowledged-writes-readable",
        "every acknowledged write is readable (on the primary) until something removes it",
        acknowledged_writes_readable,
    ),
    Property(
        "reads-own-writes", "a store reading from a replica (read_dsn) reads its own writes", reads_own_writes
    ),
    Property(
        "keyed-retry-answers-as-first",
        "a keyed write retried answers what its first attempt wrote, until the key is forgotten",
        keyed_retry_answers_as_first,
    ),
    Property(
        "at-most-once",
        "every write is stored at most once (an unknown outcome: once or not at all); a failed one never",
        at_most_once,
    ),
    Property(
        "feed-delivers-every-write",
        "a feed delivers every write committed after its cursor, or raises",
        feed_delivers_every_write,
    ),
    Property(
        "feed-delivers-once", "a feed delivers no change twice, across stops and resumes", feed_delivers_once
    ),
    Property(
        "feed-in-order-per-document", "per document, a feed's versions increase", feed_in_order_per_document
    ),
    Property(
        "feed-refuses-only-for-cause",
        "a feed raises ChangesPruned only when prune_changes ran after its cursor was taken",
        feed_refuses_only_for_cause,
    ),
    Property(
        "feed-resumes-from-any-saved-cursor",
        "resuming from any cursor a consumer saved delivers what followed it, or raises ChangesPruned",
        feed_resumes_from_any_saved_cursor,
    ),
    Property(
        "purge-leaves-no-trace",
        "a purged document leaves no row in any table, idempotency keys included",
        purge_leaves_no_trace,
    ),
    Property(
        "config-watch-converges",
        "watch_configs comes to hold what the store holds",
        config_watch_converges,
    ),
    Property("copy-is-identical", "export | import | export gives the same lines", copy_is_identical),
    Property(
        "errors-are-documented",
        "every error is a docstore error the call documents",
        errors_are_documented,
    ),
    Property("no-secret-shown", "no error, cause, traceback or log line shows a password", no_secret_shown),
    Property(
        "bad-input-refused",
        "a bad cursor, spoiled import line, bad DSN or YAML alias bomb is refused clearly and quickly",
        bad_input_refused,
    ),
]


def check(record: Record) -> dict[str, list[str]]:
    """Every property's violations (only those that have some)."""
    found: dict[str, list[str]] = {}
    for prop in PROPERTIES:
        lines = list(prop.check(record))
        if lines:
            found[prop.name] = lines
    return found


def _calls(calls: list[Call]) -> str:
    return ", ".join(f"call {c.index} ({c.outcome})" for c in calls[:4])
