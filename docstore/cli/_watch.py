"""``docstore watch`` (the change feed, printed as it happens) and ``docstore
prune-changes`` (its retention)."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import orjson
import typer
from psycopg import sql

from ..change import Change, check_cursor
from ..errors import ChangesPruned, DatabaseUnavailable, DocStoreError
from ..store import DocStore
from . import _out
from ._app import command, settings
from ._docs import _store
from ._errors import CliError
from ._ops import parse_age
from ._query import raw

START = "0.0"
"""The cursor before every change: where a feed no prune-changes has passed starts over."""


def _line(change: Change) -> str:
    when = change.written_at.isoformat(sep=" ", timespec="milliseconds")
    return f"{when}  {change.op:<7} {change.kind} {change.name!r} v{change.version}  cursor {change.cursor}"


def _error_type(exc: ValueError) -> str:
    # The library's own type where it has one (CursorAheadOfServer, InvalidCursor).
    return type(exc).__name__ if isinstance(exc, DocStoreError) else "InvalidCursor"


def _not_a_cursor(cursor: str, exc: ValueError) -> CliError:
    """The user's --after refused (the library's ValueError, an InvalidCursor where it has
    one), said for a shell user: what to pass instead."""
    problem = getattr(exc, "problem", None)
    what = f" ({problem})" if problem else ""
    return CliError(
        f"--after {cursor!r} is not a change feed cursor{what}: pass one that `docstore watch` "
        "printed (after 'cursor'), --from-start to replay every change still retained, or no "
        "--after to follow the changes from now on",
        error_type=_error_type(exc),
    )


def _start_refused(exc: ValueError, from_start: bool) -> CliError:
    """The feed's own start refused by the server: the mark prune-changes left is another
    cluster's (copied by pg_dump)."""
    problem = getattr(exc, "problem", None)
    what = f" ({problem})" if problem else ""
    begins = "--from-start begins" if from_start else "a new feed begins"
    return CliError(
        f"the change feed cannot start: {begins} where prune-changes stopped, "
        f"{getattr(exc, 'cursor', '')!r}, and the server refuses it{what}: the feed holds "
        "another cluster's rows (a schema restored from pg_dump?); empty it as "
        "docs/backups.md says",
        error_type=_error_type(exc),
    )


def oldest_retained(store: DocStore) -> str:
    """A cursor before the oldest change still kept: where prune-changes stopped, if it ran."""
    query = sql.SQL(
        "SELECT data ->> 'pruned_through' FROM {s}.documents WHERE kind = '_docstore' AND name = 'changes'"
    ).format(s=sql.Identifier(store.schema))
    rows = raw(store, query)
    return str(rows[0][0]) if rows and rows[0][0] else START


_RESUME = re.compile(r"; resume with changes\(after='([^']*)'\)")


def resume_hint(message: str) -> str:
    """The feed's "gave up" message with the command that resumes it, not its Python call."""
    return _RESUME.sub(lambda m: f"; resume with `docstore watch --after {m.group(1)}`", message)


@command()
def watch(
    ctx: typer.Context,
    kinds: Annotated[
        list[str] | None, typer.Argument(help="Kinds to follow (default: all).", show_default=False)
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(
            metavar="CURSOR",
            help="Start after this cursor (the last one printed) instead of now.",
            show_default=False,
        ),
    ] = None,
    from_start: Annotated[
        bool,
        typer.Option(
            "--from-start",
            help="Replay every change still retained (prune-changes deletes older ones), then follow.",
        ),
    ] = False,
    count: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Stop after this many changes.", show_default=False)
    ] = None,
) -> None:
    """Print every committed write as it happens, in commit-safe order (Ctrl-C stops).

    Each line ends with the change's cursor: `--after CURSOR` resumes after it.
    With --json, one JSON object per line: kind, name, version, op, written_at, cursor.
    """
    if after is not None and from_start:
        raise typer.BadParameter("give --after CURSOR or --from-start, not both", param_hint="'--from-start'")
    if after is not None:
        try:
            check_cursor(after)
        except ValueError as exc:
            raise _not_a_cursor(after, exc) from None
    as_json = settings(ctx).json
    with _store(ctx) as store:
        start = oldest_retained(store) if from_start else after
        try:
            _follow(store, kinds or None, start, count, as_json)
        except ChangesPruned as exc:
            if from_start:
                where = "a prune-changes that ran meanwhile passed where --from-start began"
            else:
                where = f"--after {exc.cursor} is older"
            raise CliError(
                f"the change feed fell behind retention: changes up to {exc.horizon} were "
                f"deleted by prune-changes, and {where}: reload what you keep, then run "
                "`docstore watch --from-start` to replay what is retained, or `docstore watch` "
                "to follow from now on",
                error_type="ChangesPruned",
            ) from None
        except DatabaseUnavailable as exc:
            raise CliError(resume_hint(str(exc)), error_type=type(exc).__name__) from None
        except ValueError as exc:
            if getattr(exc, "cursor", None) is None:
                raise
            # Refused by the server (a cursor of another cluster's): the user's, or the feed's own.
            raise (
                _not_a_cursor(after, exc) if after is not None else _start_refused(exc, from_start)
            ) from None


def _follow(
    store: DocStore, kinds: list[str] | None, after: str | None, count: int | None, as_json: bool
) -> None:
    out = sys.stdout
    for seen, change in enumerate(store.changes(kinds, after=after), 1):
        if as_json:
            record = {
                "kind": change.kind,
                "name": change.name,
                "version": change.version,
                "op": change.op,
                "written_at": change.written_at,
                "cursor": change.cursor,
            }
            out.buffer.write(orjson.dumps(record) + b"\n")
            out.buffer.flush()
        else:
            print(_line(change), flush=True)
        if count is not None and seen >= count:
            return


@command("prune-changes")
def prune_changes(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            metavar="AGE",
            help="Delete the change feed's rows written before this age (7d, 12h) or date.",
            show_default=False,
        ),
    ],
) -> None:
    """Delete old rows of the change feed (a feed still behind them gets ChangesPruned)."""
    age = parse_age(older_than)
    with _store(ctx) as store:
        gone = store.prune_changes(older_than=age)
    if settings(ctx).json:
        _out.emit_json({"pruned": gone, "what": "changes"})
    else:
        print(f"{gone} changes pruned")
