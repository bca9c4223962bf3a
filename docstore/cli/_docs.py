"""Commands on single documents: get, put, ls, log, diff, revert, rm, restore, history."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from psycopg import sql
from rich.markup import escape as _escape_markup

from ..agents.configfiles import YAMLRefused, load_yaml
from ..doc import Doc
from ..errors import DocumentNotFound, InvalidFilter
from ..kinds import ANY_DICT
from ..store import DocStore
from . import _jsondiff, _out
from ._app import command, settings
from ._errors import CliError
from ._kinds import ensure_kind
from ._query import raw
from ._store import open_store


def _safe(text: str) -> str:
    """Text for rich markup: its own brackets and terminal controls shown, not obeyed."""
    return _escape_markup(_out.clean(text, newlines=True))


Kind = Annotated[
    str, typer.Argument(metavar="KIND", help="The document's kind (agent, llm, conversation, ...).")
]
Name = Annotated[str, typer.Argument(metavar="NAME", help="The document's name within its kind.")]
Expected = Annotated[
    int | None,
    typer.Option(
        "--expected-version",
        min=0,
        metavar="N",
        help="Write only if the document is at this version (0: must not exist).",
        show_default=False,
    ),
]


@contextmanager
def _store(ctx: typer.Context, kind: str | None = None, *, new: bool = False) -> Iterator[DocStore]:
    with open_store(settings(ctx)) as store:
        if kind is not None:
            ensure_kind(store, kind, new=new)
        yield store


def jsonable(store: DocStore, doc: Doc[Any]) -> Any:
    """A Doc's data as JSON values, dumped by its kind's model (a log's head: its meta)."""
    spec = store.kinds.get(doc.kind)
    adapter = (spec.meta or ANY_DICT) if spec.mode == "log" else spec.adapter
    return adapter.dump_python(doc.data, mode="json", by_alias=True)


def envelope(store: DocStore, doc: Doc[Any]) -> dict[str, Any]:
    out = {
        "kind": doc.kind,
        "name": doc.name,
        "version": doc.version,
        "schema_version": doc.schema_version,
        "created_at": doc.created_at,
        "updated_at": doc.updated_at,
        "deleted": doc.deleted,
    }
    if doc.count is not None:
        out["count"] = doc.count
    out["data"] = jsonable(store, doc)
    return out


def _print_json_value(value: Any) -> None:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    if sys.stdout.isatty():
        _out.console().print_json(text)
    else:
        sys.stdout.write(text + "\n")


@command()
def get(
    ctx: typer.Context,
    kind: Kind,
    name: Name,
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            "-v",
            min=1,
            metavar="N",
            help="An older version (snapshot kinds).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a document's data as JSON (with --json: with its version and times)."""
    with _store(ctx, kind) as store:
        doc = store.get(kind, name, version=version)
        if settings(ctx).json:
            _out.emit_json(envelope(store, doc))
        else:
            _print_json_value(jsonable(store, doc))


def _read_value(source: str) -> Any:
    """The JSON or YAML document in a file or on stdin (``-``); errors give line and column."""
    where = "stdin" if source == "-" else source
    if source == "-":
        text, suffix = sys.stdin.read(), ""
    else:
        path = Path(source)
        try:
            text, suffix = path.read_text(encoding="utf-8"), path.suffix.lower()
        except FileNotFoundError:
            raise CliError(f"no such file: {source}") from None
        except UnicodeDecodeError as exc:
            raise CliError(f"{source} is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        hint = " (pipe a JSON or YAML document into it)" if source == "-" else ""
        raise CliError(f"{where} is empty: there is no document to store{hint}")
    # Text that starts like JSON is JSON: its error (line, column) is the useful one.
    if suffix == ".json" or (suffix not in (".yaml", ".yml") and text.lstrip()[:1] in "{["):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise CliError(
                f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    try:
        return load_yaml(text)
    except YAMLRefused as exc:
        raise CliError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or _first(exc)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise CliError(f"{where}: neither JSON nor valid YAML{at}: {problem}") from None


def _first(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@command()
def put(
    ctx: typer.Context,
    kind: Kind,
    name: Name,
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="JSON or YAML file, or - for stdin.")],
    expected_version: Expected = None,
    new_kind: Annotated[
        bool,
        typer.Option(
            "--new-kind",
            help="Allow a kind that is neither registered nor in the store yet "
            "(else refused as a likely typo).",
        ),
    ] = False,
) -> None:
    """Validate and store a document as its next version (unchanged: nothing written)."""
    value = _read_value(source)
    with _store(ctx, kind, new=new_kind) as store:
        doc = store.put(kind, name, value, expected_version=expected_version)
        changed = bool(doc.changed)
        if settings(ctx).json:
            _out.emit_json({"kind": kind, "name": name, "version": doc.version, "changed": changed})
        else:
            state = f"version {doc.version}" if changed else f"unchanged at version {doc.version}"
            print(f"{kind} {name!r}: {state}")


@command("ls")
def ls(
    ctx: typer.Context,
    kind: Kind,
    where: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help='JSON object the data must contain, e.g. \'{"provider": "openai"}\'.',
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="At most N documents (default: all).", show_default=False),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Leave out documents that fail validation instead of failing.")
    ] = False,
) -> None:
    """List the current documents of a kind, by name."""
    filter_ = None
    if where is not None:
        try:
            filter_ = orjson.loads(where)
        except orjson.JSONDecodeError as exc:
            raise typer.BadParameter(
                f"not JSON (column {exc.colno}: {exc.msg})", param_hint="'--where'"
            ) from None
        if not isinstance(filter_, dict):
            raise typer.BadParameter(
                'must be a JSON object, e.g. \'{"provider": "openai"}\'', param_hint="'--where'"
            )
    with _store(ctx, kind) as store:
        try:
            docs = store.list(
                kind, where=filter_, limit=limit, on_invalid="skip" if skip_invalid else "raise"
            )
        except InvalidFilter as exc:
            raise typer.BadParameter(str(exc), param_hint="'--where'") from None
        log = store.kinds.get(kind).mode == "log"
        if settings(ctx).json:
            _out.emit_json([envelope(store, d) for d in docs])
            return
        columns = ["name", "version", "sv", "updated"] + (["items"] if log else [])
        rows = [
            [d.name, d.version, d.schema_version, _out.when(d.updated_at)] + ([d.count] if log else [])
            for d in docs
        ]
        _out.table(f"{kind}: {len(docs)} document(s)", columns, rows)


@command()
def log(
    ctx: typer.Context,
    kind: Kind,
    name: Name,
    last: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Only the newest N versions.", show_default=False)
    ] = None,
) -> None:
    """List a document's versions with their operation, author and time."""
    with _store(ctx) as store:
        query = sql.SQL(
            "SELECT version, schema_version, op, author, written_at, pg_column_size(data) "
            "FROM {s}.versions WHERE kind = %(k)s AND name = %(n)s "
            "ORDER BY version DESC LIMIT %(last)s"
        ).format(s=sql.Identifier(store.schema))
        rows = raw(store, query, {"k": kind, "n": name, "last": last})[::-1]
        if not rows:
            raise DocumentNotFound(kind, name)
        if settings(ctx).json:
            _out.emit_json(
                [
                    {
                        "version": v,
                        "schema_version": sv,
                        "op": op,
                        "author": author,
                        "written_at": at,
                        "bytes": size,
                    }
                    for v, sv, op, author, at, size in rows
                ]
            )
            return
        _out.table(
            f"{kind} {name!r}: {len(rows)} version(s)",
            ["version", "op", "sv", "author", "written", "bytes"],
            [[v, op, sv, author or "", _out.when(at), size] for v, sv, op, author, at, size in rows],
        )


@command()
def diff(
    ctx: typer.Context,
    kind: Kind,
    name: Name,
    v1: Annotated[int, typer.Argument(min=1, metavar="V1", help="The older version.")],
    v2: Annotated[
        int | None,
        typer.Argument(
            min=1, metavar="V2", help="The newer version (default: the current one).", show_default=False
        ),
    ] = None,
) -> None:
    """Show what changed between two versions, one line per changed path."""
    with _store(ctx, kind) as store:
        old = store.get(kind, name, version=v1)
        new = store.get(kind, name, version=v2) if v2 is not None else store.get(kind, name)
        changes = _jsondiff.diff(jsonable(store, old), jsonable(store, new))
        if settings(ctx).json:
            _out.emit_json(
                {"kind": kind, "name": name, "from": old.version, "to": new.version, "changes": changes}
            )
            return
        print(f"{kind} {name!r}: version {old.version} -> {new.version}, {len(changes)} change(s)")
        for line in _jsondiff.render(changes):
            style = {"+": "green", "-": "red"}.get(line[0], "yellow")
            _out.console().print(f"[{style}]{_safe(line)}[/]")


@command()
def revert(
    ctx: typer.Context,
    kind: Kind,
    name: Name,
    version: Annotated[int, typer.Argument(min=1, metavar="VERSION", help="The version to bring back.")],
    expected_version: Expected = None,
) -> None:
    """Write an old version's value as a new version."""
    with _store(ctx, kind) as store:
        doc = store.revert(kind, name, version, expected_version=expected_version)
        if settings(ctx).json:
            _out.emit_json({"kind": kind, "name": name, "version": doc.version, "reverted_to": version})
        else:
            print(f"{kind} {name!r}: version {doc.version} (the value of version {version})")


@command()
def rm(ctx: typer.Context, kind: Kind, name: Name, expected_version: Expected = None) -> None:
    """Delete a document (a tombstone version; its history stays until pruned)."""
    with _store(ctx, kind) as store:
        version = store.delete(kind, name, expected_version=expected_version)
        if settings(ctx).json:
            _out.emit_json({"kind": kind, "name": name, "version": version, "deleted": True})
        else:
            print(f"{kind} {name!r}: deleted at version {version}")


@command()
def restore(ctx: typer.Context, kind: Kind, name: Name, expected_version: Expected = None) -> None:
    """Bring back a deleted document (a session the framework deleted, say)."""
    with _store(ctx, kind) as store:
        version = store.restore(kind, name, expected_version=expected_version)
        if settings(ctx).json:
            _out.emit_json({"kind": kind, "name": name, "version": version, "deleted": False})
        else:
            print(f"{kind} {name!r}: restored, at version {version}")


@command()
def history(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="The agent's name.")],
    session: Annotated[str, typer.Argument(metavar="SESSION", help="The session id.")],
    last: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Only the newest N messages.", show_default=False)
    ] = None,
) -> None:
    """Print a conversation readably: roles, text, tool calls and results."""
    with _store(ctx, "conversation") as store:
        heads = store.list("conversation", where={"agent_name": agent, "session_id": session}, limit=1)
        if not heads:
            raise DocumentNotFound(
                "conversation", f"{agent}/{session}", reason=f"no session {session!r} of agent {agent!r}"
            )
        entries = store.read("conversation", heads[0].name, last=last, written_at=True).entries()
        spec = store.kinds.get("conversation")
        items = [
            (e.version, e.written_at, spec.adapter.dump_python(e.item, mode="json", by_alias=True))
            for e in entries
        ]
        if settings(ctx).json:
            _out.emit_json(
                {
                    "agent": agent,
                    "session": session,
                    "name": heads[0].name,
                    "messages": [{"version": v, "written_at": at, "message": m} for v, at, m in items],
                }
            )
            return
        console = _out.console()
        console.print(
            f"[bold]{_safe(agent)}[/] / {_safe(session)}: "
            f"{heads[0].count} message(s)" + (f", last {len(items)}" if last else "")
        )
        for version, _at, message in items:
            for line in message_lines(message):
                console.print(f"[dim]{version:>5}[/] {line}")


_ROLE_STYLE = {"user": "cyan", "assistant": "green", "system": "magenta", "tool": "yellow"}


def message_lines(message: Any) -> list[str]:
    """A message as rich-markup lines: role and text, then each tool call or result."""
    if not isinstance(message, dict):
        return [_safe(orjson.dumps(message).decode())]
    role = str(message.get("role", "?"))
    tag = f"[bold {_ROLE_STYLE.get(role, 'white')}]{_safe(role):>9}[/]"
    lines: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        lines.append(_safe(content))
    elif isinstance(content, list):
        for block in content:
            lines.append(_block(block))
    if role == "tool" and message.get("tool_call_id"):
        lines = [f"[yellow]<- result {_safe(str(message['tool_call_id']))}:[/] " + " ".join(lines)]
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        lines.append(
            f"[yellow]-> {_safe(str(function.get('name')))}({_safe(str(function.get('arguments', '')))})[/]"
        )
    if not lines:
        lines = [""]
    return [f"{tag} {lines[0]}"] + [f"{'':>9} {line}" for line in lines[1:]]


def _block(block: Any) -> str:
    if not isinstance(block, dict):
        return _safe(str(block))
    kind = block.get("type")
    if kind == "text":
        return _safe(str(block.get("text", "")))
    if kind == "tool_use":
        args = orjson.dumps(block.get("input", {})).decode()
        return f"[yellow]-> {_safe(str(block.get('name')))}({_safe(args)})[/]"
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, list):
            inner = " ".join(str(p.get("text", "")) for p in inner if isinstance(p, dict))
        err = " (error)" if block.get("is_error") else ""
        return f"[yellow]<- result {_safe(str(block.get('tool_use_id')))}{err}:[/] {_safe(str(inner or ''))}"
    return f"[dim]\\[{_safe(str(kind))}][/]"
