"""Plans that keep a store in shape: retention, and export and import of every row."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from . import _sql as q
from ._base import CoreBase, literal
from ._codec import find_problem
from ._plan import MAX_VERSION, Op, Plan, Stmt
from .doc import Imported
from .errors import (
    DocStoreError,
    InvalidKey,
    KindMismatch,
)
from .kinds import check_key

__all__ = ["ImportCheck", "UpkeepPlans"]


class UpkeepPlans(CoreBase):
    """Plans for pruning old data and moving a store's rows in and out."""

    # --- retention ---------------------------------------------------------------------

    def prune(
        self,
        kind: str,
        older_than: timedelta | datetime | None,
        keep_last: int | None,
        batch_size: int,
        progress: Callable[[int], None] | None = None,
        restorable: bool = False,
    ) -> Op[int]:
        """Delete whole documents by age of last write and/or beyond the newest N (with
        ``restorable``, a log kind's are deleted as ``delete`` does, not removed)."""
        spec = self.kinds.get(kind)
        if restorable and spec.mode != "log":
            raise KindMismatch(
                f"prune(restorable=True) deletes logs; kind {kind!r} is a snapshot kind: "
                "delete its documents one by one, or prune them for good"
            )
        if older_than is None and keep_last is None:
            raise ValueError("prune needs older_than=, keep_last= or both")
        if keep_last is not None and keep_last < 0:
            raise ValueError(f"keep_last must be >= 0, not {keep_last}")

        def plan() -> Plan[int]:
            cutoff: datetime | None = None
            if isinstance(older_than, timedelta):
                ((now,),) = yield Stmt("SELECT now()")
                cutoff = now - older_than
            elif older_than is not None:
                cutoff = older_than
            gone = yield from _in_batches(
                Stmt(
                    self.sql(q.HIDE_LOGS, kind=literal(kind)) if restorable else self.sql(q.PRUNE_DOCUMENTS),
                    {"kind": kind, "cutoff": cutoff, "keep_last": keep_last or 0, "batch": batch_size},
                ),
                batch_size,
                progress,
            )
            if cutoff is not None and not restorable:
                # Idempotency keys of the kind's writes are remembered until then too.
                yield from _in_batches(
                    Stmt(self.sql(q.PRUNE_KEYS), {"kind": kind, "cutoff": cutoff, "batch": batch_size}),
                    batch_size,
                    None,
                )
            return gone

        return Op(plan, kind)

    def purge(self, kind: str, names: str | Sequence[str]) -> Op[list[str]]:
        """Delete the named documents and all their versions; returns the live ones."""
        self.kinds.get(kind)
        doomed = [names] if isinstance(names, str) else list(names)
        for name in doomed:
            check_key(kind, name)

        def plan() -> Plan[list[str]]:
            if not doomed:
                return []
            rows = yield Stmt(self.sql(q.PURGE_DOCUMENTS), {"kind": kind, "names": doomed})
            return sorted(name for name, deleted in rows if not deleted)

        return Op(plan, kind)

    def prune_versions(
        self, kind: str, keep_last: int, batch_size: int, progress: Callable[[int], None] | None = None
    ) -> Op[int]:
        """Drop versions older than the newest ``keep_last`` (live items always stay)."""
        self.kinds.get(kind)
        if not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(f"keep_last must be an int >= 1 (the current version stays), not {keep_last!r}")
        stmt = Stmt(self.sql(q.PRUNE_VERSIONS), {"kind": kind, "keep_last": keep_last, "batch": batch_size})
        return Op(lambda: _in_batches(stmt, batch_size, progress), kind)

    def prune_changes(self, older_than: timedelta | datetime, batch_size: int = 5000) -> Op[int]:
        """Delete the change feed's rows up to the last one written before the cutoff, a
        batch per transaction, recording how far it went, so that a feed left behind says
        so (ChangesPruned)."""
        if not isinstance(older_than, timedelta | datetime):
            raise ValueError(f"older_than must be a timedelta or a datetime, not {older_than!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, not {batch_size!r}")

        def plan() -> Plan[int]:
            cutoff = older_than
            if isinstance(older_than, timedelta):
                ((now,),) = yield Stmt("SELECT now()")
                cutoff = now - older_than
            total = 0
            while True:
                ((gone,),) = yield Stmt(self.sql(q.PRUNE_CHANGES), {"cutoff": cutoff, "batch": batch_size})
                total += int(gone)
                if gone < batch_size:
                    return total

        return Op(plan)

    # --- export and import -------------------------------------------------------------

    def export_start(self, kinds: Sequence[str] | None) -> Op[None]:
        """Open the export's cursor over the keys of ``kinds`` (else all), in the export
        order. Runs in the export's transaction; :meth:`export_page` reads from it."""
        for kind in kinds or ():
            check_key(kind)
        params = {"kinds": list(kinds) if kinds is not None else None}

        def plan() -> Plan[None]:
            yield Stmt(self.sql(q.EXPORT_KEYS), params)

        return Op(plan, read_only=True)

    def export_page(self, limit: int) -> Op[tuple[list[str], bool]]:
        """Export lines of the next ``limit`` documents: each head line, then its versions
        in order; and whether more may follow. Raw JSON as stored: no kind needs
        registering."""
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"batch_size must be an int >= 1, not {limit!r}")

        def plan() -> Plan[tuple[list[str], bool]]:
            keys = yield Stmt(self.sql(q.EXPORT_FETCH, count=str(limit)))
            if not keys:
                return [], False
            page = {"kinds": [k for k, _ in keys], "names": [n for _, n in keys]}
            heads = yield Stmt(self.sql(q.EXPORT_HEADS), page)
            rows = yield Stmt(self.sql(q.EXPORT_VERSIONS), page)
            versions: dict[tuple[str, str], list[str]] = {}
            for kind, name, line in rows:
                versions.setdefault((kind, name), []).append(line)
            lines: list[str] = []
            for kind, name, line in heads:
                lines.append(line)
                lines.extend(versions.get((kind, name), ()))
            return lines, len(keys) == limit

        return Op(plan, read_only=True)

    @staticmethod
    def import_check() -> ImportCheck:
        """A checker that an import feeds every line and finishes before committing."""
        return ImportCheck()

    def import_lines(
        self, lines: Sequence[str], first_line: int = 1, check: ImportCheck | None = None
    ) -> Op[Imported]:
        """Restore export lines; returns the documents and versions written. Rows already
        stored identically are skipped, so an import runs again safely; a row stored
        differently raises and writes nothing. ``check`` sees the lines in file order."""
        check = check if check is not None else ImportCheck()
        for offset, line in enumerate(lines):
            check.line(first_line + offset, _check_export_line(first_line + offset, line))
        params = {"lines": list(lines)}

        def plan() -> Plan[Imported]:
            if not lines:
                return Imported(0, 0)
            clashes = yield Stmt(self.sql(q.IMPORT_CONFLICTS), params)
            if clashes:
                shown = _describe_clashes(clashes)
                raise DocStoreError(
                    f"import: the store already holds different data for "
                    f"{shown}; import restores into an empty store "
                    f"(nothing was written)"
                )
            ((docs, vers),) = yield Stmt(self.sql(q.IMPORT_WRITE), params)
            return Imported(int(docs), int(vers))

        return Op(plan, atomic=True)


def _describe_clashes(clashes: list[tuple[Any, ...]]) -> str:
    """``agent 'support' (its current document and version 1), ...``: each document once."""
    parts: dict[tuple[str, str], list[str]] = {}
    for what, kind, name, version in clashes:
        parts.setdefault((kind, name), []).append(
            "its current document" if what == "document" else f"version {version}"
        )
    return ", ".join(
        f"{kind} {name!r} ({' and '.join(p) if len(p) < 3 else ', '.join(p)})"
        for (kind, name), p in parts.items()
    )


_LINE_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "document": {
        "kind": str,
        "name": str,
        "mode": str,
        "version": int,
        "live_from": int,
        "schema_version": int,
        "deleted": bool,
        "created_at": str,
        "updated_at": str,
    },
    "version": {
        "kind": str,
        "name": str,
        "version": int,
        "schema_version": int,
        "op": str,
        "author": (str, type(None)),
        "written_at": str,
    },
}


# The numbers of a line and the largest each column takes (bigint, integer).
_LIMITS = {
    "version": (MAX_VERSION, "2**63-1"),
    "live_from": (MAX_VERSION, "2**63-1"),
    "schema_version": (2**31 - 1, "2**31-1"),
}


class ImportCheck:
    """Checks, line by line and in constant memory, that a file is one export: document
    lines in export order (kind, then name, by code point: the "C" collation), each
    followed by its own versions in increasing order, and each document's versions
    agreeing with its head (no version past the head's; a snapshot holds its current
    version; a log holds every live item). Two exports concatenated, or a file cut in
    the middle of a document, fail here, whatever the batch size."""

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._head: dict[str, Any] = {}
        self._head_line = 0
        self._last_version = 0
        self._live = 0  # live items (logs) or current versions (snapshots) seen

    def line(self, number: int, record: dict[str, Any]) -> None:
        """Check one parsed line, in file order."""
        key = (record["kind"], record["name"])
        if record["t"] == "document":
            self.finish()
            if self._key is not None and key <= self._key:
                raise DocStoreError(
                    f"import line {number}: {key[0]} {key[1]!r} comes after "
                    f"{self._key[0]} {self._key[1]!r}, out of export order (two exports "
                    "joined, or an edited file?); nothing was written"
                )
            self._key, self._head, self._head_line = key, record, number
            self._last_version = self._live = 0
            return
        version = record["version"]
        if key != self._key:
            raise DocStoreError(
                f"import line {number}: a version of {key[0]} {key[1]!r} "
                "that does not follow that document's line; nothing was "
                "written"
            )
        if version <= self._last_version:
            raise DocStoreError(
                f"import line {number}: {key[0]} {key[1]!r} version {version} "
                f"after version {self._last_version}, out of order or twice; "
                "nothing was written"
            )
        head_version = self._head["version"]
        if version > head_version:
            raise DocStoreError(
                f"import line {number}: {key[0]} {key[1]!r} version {version} "
                f"is past its document's version {head_version} (line "
                f"{self._head_line}); nothing was written"
            )
        self._last_version = version
        low = self._head["live_from"] if self._head["mode"] == "log" else head_version
        if version >= low:
            self._live += 1

    def finish(self) -> None:
        """Check the last document's versions; call after the last line."""
        if self._key is None:
            return
        head = self._head
        if head["mode"] == "log":
            want = max(0, head["version"] - head["live_from"] + 1)
            what = f"its {want} live items (versions {head['live_from']} to {head['version']})"
        else:
            want = 1 if head["version"] >= 1 else 0
            what = f"its current version {head['version']}"
        if self._live != want:
            raise DocStoreError(
                f"import: {head['kind']} {head['name']!r} (line {self._head_line}) lacks "
                f"{what}: {self._live} of {want} are in the file (was it cut short?); "
                "nothing was written"
            )


def _check_export_line(number: int, line: str) -> dict[str, Any]:
    """Refuse, with its line number, an import line that is not one export wrote;
    returns it parsed."""
    try:
        # The stdlib parser: exact for any integer, and this only checks the shape.
        record = json.loads(line)
    except ValueError as exc:
        raise DocStoreError(f"import line {number}: not JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("t") not in _LINE_FIELDS:
        raise DocStoreError(
            f'import line {number}: not a docstore export line (an object with "t": "document" or "version")'
        )
    for key, types in _LINE_FIELDS[record["t"]].items():
        value = record.get(key)
        if not isinstance(value, types) or (isinstance(value, bool) and types is int):
            raise DocStoreError(f"import line {number}: field {key!r} is missing or has the wrong type")
    if "data" not in record:
        raise DocStoreError(f"import line {number}: field 'data' is missing")
    try:
        check_key(record["kind"], record["name"])
    except InvalidKey as exc:
        raise DocStoreError(f"import line {number}: {exc}") from None
    if record["t"] == "document" and record["mode"] not in ("log", "snapshot"):
        raise DocStoreError(f"import line {number}: field 'mode' is not 'log' or 'snapshot'")
    where = f"import line {number}: {record['kind']} {record['name']!r}"
    for key, (top, spelled) in _LIMITS.items():
        value = record.get(key)
        if value is not None and not 0 <= value <= top:
            why = "negative" if value < 0 else f"past {spelled}"
            raise DocStoreError(
                f"{where}: field {key!r} is {why}, out of the range PostgreSQL's column holds; "
                "nothing was written"
            )
    # What jsonb cannot hold (the server would refuse the whole batch, naming no line):
    # only a line with an escape or a bare NaN/Infinity can hold any, so most skip the walk.
    if "\\u" in line or "NaN" in line or "Infinity" in line:
        found = find_problem({k: v for k, v in record.items() if k not in ("kind", "name")})
        if found is not None:
            raise DocStoreError(f"{where}: {found.path} {found.problem}; nothing was written")
    return dict(record)


def _in_batches(stmt: Stmt, batch_size: int, progress: Callable[[int], None] | None) -> Plan[int]:
    """Run a batch-limited DELETE until a batch comes back short; returns the rows gone."""
    total = 0
    while True:
        rows = yield stmt
        total += len(rows)
        if progress is not None:
            progress(total)
        if len(rows) < batch_size:
            return total
