"""``docstore watch`` (the change feed, printed as it happens) and ``docstore
prune-changes`` (its retention)."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer

from ..change import Change
from . import _out
from ._app import command, settings
from ._docs import _store
from ._ops import parse_age


def _line(change: Change) -> str:
    when = change.written_at.isoformat(sep=" ", timespec="milliseconds")
    return f"{when}  {change.op:<7} {change.kind} {change.name!r} v{change.version}  {change.cursor}"


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
    count: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Stop after this many changes.", show_default=False)
    ] = None,
) -> None:
    """Print every committed write as it happens, in commit-safe order (Ctrl-C stops).

    With --json, one JSON object per line: kind, name, version, op, written_at, cursor.
    """
    as_json = settings(ctx).json
    with _store(ctx) as store:
        out = sys.stdout
        for seen, change in enumerate(store.changes(kinds or None, after=after), 1):
            if as_json:
                out.buffer.write(
                    orjson.dumps(
                        {
                            "kind": change.kind,
                            "name": change.name,
                            "version": change.version,
                            "op": change.op,
                            "written_at": change.written_at,
                            "cursor": change.cursor,
                        }
                    )
                    + b"\n"
                )
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
