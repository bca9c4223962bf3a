"""Output: JSON for machines, rich tables for people, progress bars on a terminal only."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

__all__ = ["Bar", "clean", "console", "emit_json", "err_console", "progress", "set_json", "table", "when"]

_JSON = False  # this invocation's --json: no progress bar then, whatever stderr is


def set_json(on: bool) -> None:
    """Record the invocation's ``--json`` (the global callback does, for every command)."""
    global _JSON
    _JSON = on


# Characters a terminal acts on instead of showing: C0/C1 controls (ESC starts an escape
# sequence) and the bidirectional overrides that make text read other than it is.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str, *, newlines: bool = False) -> str:
    """``text`` safe to print on a terminal: control characters shown as ``\\x1b``;
    with ``newlines``, newlines and tabs are kept (a message's text), else shown too."""
    out = _UNSAFE.sub(_escaped, text)
    return out if newlines else out.replace("\n", "\\n").replace("\t", "\\t")


def console() -> Console:
    """stdout; wide and plain when piped, so tables are not squeezed to 80 columns."""
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if tty else 120, soft_wrap=not tty, highlight=tty)


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(type(value).__name__)


def emit_json(value: Any) -> None:
    """One JSON document on stdout (indented, times in ISO 8601)."""
    sys.stdout.buffer.write(
        orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )
    sys.stdout.buffer.write(b"\n")
    sys.stdout.buffer.flush()


def when(value: datetime | None) -> str:
    """A time for a table: local to the server's answer, to the second."""
    return value.isoformat(sep=" ", timespec="seconds") if value is not None else ""


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A readable table on stdout."""
    # Cells are Text, never markup: a name such as "[red]x" or one holding ESC prints as is.
    out = Table(
        title=Text(clean(title)) if title is not None else None,
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    for column in columns:
        numeric = column in {
            "version",
            "versions",
            "docs",
            "deleted",
            "count",
            "items",
            "sv",
            "bytes",
            "documents",
            "v",
            "sessions",
            "messages",
            "written",
            "unchanged",
        }
        out.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        out.add_row(*(Text("" if cell is None else clean(str(cell))) for cell in row))
    console().print(out)


class Bar:
    """A progress handle: ``update(done)``, ``advance(n)`` or ``step(done, total)``; a
    no-op when not on a TTY."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def update(self, completed: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def step(self, completed: int, total: int) -> None:
        """``completed`` of ``total``, when the total is known only once work began."""
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total)


@contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Bar]:
    """A bar on stderr when stderr is a terminal; silent when piped or redirected, and
    with ``--json`` (a program reads the output)."""
    if _JSON or not sys.stderr.isatty():
        yield Bar(None, None)
        return
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err_console(), transient=True) as bar:
        yield Bar(bar, bar.add_task(label, total=total))
