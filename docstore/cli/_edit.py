"""``docstore edit`` (the current document in ``$EDITOR``) and ``docstore patch`` (an
RFC 7386 JSON merge patch): changes from a shell that keep every key they do not name."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from ..errors import DocStoreError, DocumentInvalid, VersionConflict
from ..store import DocStore
from . import _out
from ._app import command, settings
from ._docs import Expected, Kind, Name, _store, jsonable
from ._errors import CliError

__all__ = ["merge_patch"]

PATCH_ATTEMPTS = 5
"""Times ``patch`` without --expected-version reads, patches and writes again when
another writer got in between (each attempt is on the newest version)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7386): an object
    patch sets the keys it names (recursively), a null removes its key, and keys it does
    not name are kept; any other patch replaces the target."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _snapshot_only(store: DocStore, kind: str, verb: str) -> None:
    if store.kinds.get(kind).mode == "log":
        raise CliError(
            f"{kind!r} is a log kind: its items are appended, never edited in place, so "
            f"`docstore {verb}` works on snapshot kinds only"
        )


def _report(ctx: typer.Context, kind: str, name: str, version: int, changed: bool) -> None:
    if settings(ctx).json:
        _out.emit_json({"kind": kind, "name": name, "version": version, "changed": changed})
    else:
        state = f"version {version}" if changed else f"unchanged at version {version}"
        print(f"{kind} {name!r}: {state}")


def _editor() -> list[str]:
    """``$EDITOR``, else ``$VISUAL``, else vi, split as a shell would (``code --wait``)."""
    chosen = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    try:
        argv = shlex.split(chosen)
    except ValueError as exc:
        raise CliError(f"the editor command {chosen!r} cannot be split into words: {exc}") from None
    if not argv:
        raise CliError("$EDITOR is blank: set it to your editor's command (vi, nano, code --wait)")
    return argv


def _draft(kind: str, name: str, text: str) -> Path:
    """A file of the user's own (mode 0600: a document may hold secrets) holding ``text``."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{kind}-{name}")[:60]
    fd, path = tempfile.mkstemp(prefix=f"docstore-edit-{label}-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    return Path(path)


@command()
def edit(ctx: typer.Context, kind: Kind, name: Name) -> None:
    """Edit a document in $EDITOR (else $VISUAL, else vi) as JSON; writes only if it changed.

    The write expects the version that was read: if another writer got there first,
    nothing is written and your text is kept in a file whose path is printed. So it is
    when the text is not valid JSON or fails validation.
    """
    with _store(ctx, kind) as store:
        _snapshot_only(store, kind, "edit")
        doc = store.get(kind, name)
        original = jsonable(store, doc)
    path = _draft(kind, name, orjson.dumps(original, option=orjson.OPT_INDENT_2).decode() + "\n")
    kept = f"your text is kept in {path}"
    argv = [*_editor(), str(path)]
    sys.stdout.flush()
    try:
        done = subprocess.run(argv, check=False)
    except OSError as exc:
        path.unlink()
        raise CliError(f"cannot run the editor {argv[0]!r}: {exc.strerror}; nothing was written") from None
    text = path.read_text(encoding="utf-8")
    if done.returncode != 0:
        raise CliError(
            f"the editor {argv[0]!r} exited with status {done.returncode}: nothing was written; {kept}"
        )
    if not text.strip():
        path.unlink()
        print(f"{kind} {name!r}: edit cancelled (the file was emptied): nothing was written", file=sys.stderr)
        return
    put_later = f"`docstore put {shlex.quote(kind)} {shlex.quote(name)} {shlex.quote(str(path))}"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CliError(
            f"{kind} {name!r}: your text is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}): nothing was written; {kept} (fix it, then {put_later} "
            f"--expected-version {doc.version}`)"
        ) from None
    if value == original:
        path.unlink()
        _report(ctx, kind, name, doc.version, changed=False)
        return
    with _store(ctx, kind) as store:
        try:
            written = store.put(kind, name, value, expected_version=doc.version)
        except VersionConflict as exc:
            raise CliError(
                f"{kind} {name!r} changed while you edited it: you read version {doc.version}, "
                f"it is now at version {exc.actual}: nothing was written; {kept} "
                f"(`docstore diff {shlex.quote(kind)} {shlex.quote(name)} {doc.version}` shows "
                f"the other change; {put_later}` writes yours over it)",
                error_type="VersionConflict",
            ) from None
        except DocumentInvalid as exc:
            raise CliError(
                f"{exc}: nothing was written; {kept} (fix it, then {put_later} "
                f"--expected-version {doc.version}`)",
                error_type="DocumentInvalid",
            ) from None
        except DocStoreError as exc:
            raise CliError(f"{exc}; {kept}", error_type=type(exc).__name__) from None
    path.unlink()
    _report(ctx, kind, name, written.version, changed=bool(written.changed))


def _read_patch(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else source
    where = "the patch on stdin" if source == "-" else "the patch"
    if not text.strip():
        raise CliError(f"{where} is empty: give a JSON object, such as '{{\"temperature\": 0.2}}'")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CliError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


@command()
def patch(
    ctx: typer.Context,
    kind: Kind,
    name: Name,
    source: Annotated[
        str,
        typer.Argument(
            metavar="JSON|-",
            help='A JSON merge patch (RFC 7386), e.g. \'{"temperature": 0.2, "old_key": null}\', '
            "or - to read it from stdin (the default).",
            show_default=False,
        ),
    ] = "-",
    expected_version: Expected = None,
) -> None:
    """Change some keys of a document (a JSON merge patch): keys it names are set, a null
    removes its key, every other key is kept; validated by the kind's model."""
    change = _read_patch(source)
    with _store(ctx, kind) as store:
        _snapshot_only(store, kind, "patch")
        for attempt in range(1, PATCH_ATTEMPTS + 1):
            doc = store.get(kind, name)
            if expected_version is not None and doc.version != expected_version:
                raise VersionConflict(kind, name, expected_version, doc.version)
            original = jsonable(store, doc)
            value = merge_patch(original, change)
            if value == original:
                _report(ctx, kind, name, doc.version, changed=False)
                return
            try:
                written = store.put(kind, name, value, expected_version=doc.version)
            except VersionConflict:
                # Without --expected-version the patch applies to whatever is newest.
                if expected_version is not None or attempt == PATCH_ATTEMPTS:
                    raise
                continue
            _report(ctx, kind, name, written.version, changed=bool(written.changed))
            return
