"""The typer application, its global options, and the error handling every command shares."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from .. import __version__
from ._compat import _OWN_CLICK, check_required
from ._out import set_json
from ._store import Settings
from ._where import find_schema

__all__ = ["GLOBAL_FLAGS", "GLOBAL_OPTIONS", "app", "settings"]


def _plain(params: list[Any]) -> list[Any]:
    """Help that shows names, not Python types, through click's public attributes: an
    optional argument reads ``[V2]``, and a required one shows no default (under typer <
    0.17 its default would print as ``<object object at 0x...>``)."""
    for param in params:
        if isinstance(param, TyperArgument):
            shown = param.metavar or (param.name or "").upper()
            if not param.required and not shown.startswith("["):
                param.metavar = f"[{shown}]"
            param.show_default = False
    return params


def _late_global(ctx: Any, param: Any, value: Any) -> Any:
    """A global option given after the command name (``docstore ls agent --json``): it
    applies as if given before it. The group's callback has made the Settings by then."""
    if not value or ctx.resilient_parsing:  # not given (an empty value means unset, as before)
        return value
    found = ctx.find_root().obj
    name = param.name.removeprefix("global_")
    if isinstance(found, Settings):
        if name == "schema":
            found.schema, found.schema_source, found.schema_given = value, "--schema", True
        else:
            setattr(found, name, value)
        if name == "json":
            set_json(True)
    return value


def _late_globals() -> list[Any]:
    """The global options again, hidden, for a command's own argument list; named apart
    from the command's own parameters (``watch KINDS...`` beside ``--kinds``).

    Under typer < 0.17 only: later typers carry their own copy of click, whose option
    class has no public constructor (0.29's needs typer's private type descriptors), so
    there the global options go before the command name (docs/cli.md)."""
    if _OWN_CLICK:
        return []
    flags = [
        TyperOption(
            param_decls=[flag, "global_" + flag[2:]],
            is_flag=True,
            default=False,
            expose_value=False,
            hidden=True,
            callback=_late_global,
        )
        for flag in GLOBAL_FLAGS
    ]
    options = [
        TyperOption(
            param_decls=[option, "global_" + option[2:]],
            type=str,
            default=None,
            expose_value=False,
            hidden=True,
            callback=_late_global,
        )
        for option in GLOBAL_OPTIONS
    ]
    return flags + options


class Command(TyperCommand):
    """A command whose help shows names and metavars, not Python types, and which takes the
    global options after its name too. A command that passes its arguments on (``bench``,
    ``aurite``: ``allow_extra_args``) takes them before its name only."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = _plain(super().get_params(ctx))
        if self.allow_extra_args:
            return params
        return params + _late_globals()

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        rest: list[str] = super().parse_args(ctx, args)
        if not ctx.resilient_parsing:
            check_required(ctx, self.get_params(ctx))
        return rest


class Group(TyperGroup):
    """The top level: the same help style as its commands."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


# Options that may appear before or after the command name.
GLOBAL_OPTIONS = ("--dsn", "--schema", "--kinds", "--author")
GLOBAL_FLAGS = ("--json", "--embedded")


app = typer.Typer(
    name="docstore",
    cls=Group,
    help="Operate a docstore: versioned, validated JSON documents and conversation logs in PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_F = TypeVar("_F", bound=Callable[..., Any])


def command(name: str | None = None, **kwargs: Any) -> Callable[[_F], _F]:
    """``app.command`` with docstore's help style."""
    register: Callable[[_F], _F] = app.command(name, cls=Command, **kwargs)
    return register


def _show_version(value: bool) -> None:
    if value:
        print(f"docstore {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    dsn: Annotated[
        str | None,
        typer.Option(
            metavar="DSN",
            help="libpq connection string or URL; else $DOCSTORE_URL, else the framework's "
            "$AURITE_DB_URL (or AURITE_DB_HOST, _USER, ...), else libpq's PG* variables.",
            show_default=False,
        ),
    ] = None,
    schema: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="PostgreSQL schema holding the store (else $DOCSTORE_SCHEMA, else "
            "$AURITE_DB_SCHEMA, else docstore).",
            show_default=False,
        ),
    ] = "",
    json: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON on stdout (errors: JSON on stderr).")
    ] = False,
    embedded: Annotated[
        bool,
        typer.Option(
            "--embedded", help="Use the embedded PostgreSQL (pgserver), data in the user's cache directory."
        ),
    ] = False,
    kinds: Annotated[
        str | None,
        typer.Option(
            metavar="MODULE:ATTR",
            help="A docstore.Registry with your own kinds (else $DOCSTORE_KINDS).",
            show_default=False,
        ),
    ] = None,
    author: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Recorded as the author of every version this command writes (shown by `log`).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print docstore's version and exit."
        ),
    ] = False,
) -> None:
    chosen, schema_source = find_schema(schema)
    set_json(json)
    ctx.obj = Settings(
        dsn=dsn,
        schema=chosen,
        schema_source=schema_source,
        json=json,
        embedded=embedded,
        kinds=kinds or os.environ.get("DOCSTORE_KINDS") or None,
        schema_given=bool(schema_source),
        author=author or None,
    )


def settings(ctx: typer.Context) -> Settings:
    """The global options of this invocation."""
    found = ctx.find_root().obj
    assert isinstance(found, Settings)
    return found
