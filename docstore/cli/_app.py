"""The typer application, its global options, and the error handling every command shares."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ._out import set_json
from ._store import Settings
from ._where import find_schema

__all__ = ["GLOBAL_FLAGS", "GLOBAL_OPTIONS", "app", "settings"]


class _Argument(TyperArgument):
    """An argument shown by its name alone: ``KIND``, ``[V2]`` (typer's default shows
    ``{KIND}`` and a ``<str>`` type column)."""

    def _usage_display_name(self) -> str:  # typer >= 0.17
        name = (self.metavar or (self.name or "").upper()) + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def make_metavar(self, ctx: Any = None) -> str:  # typer < 0.17 (click's usage line)
        return self._usage_display_name()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Option(TyperOption):
    """A flag shows no ``<bool>``; an option with a value shows its metavar (``N``)."""

    def display_type_rich(self, ctx: Any) -> str | None:  # typer >= 0.17
        if self.is_flag:
            return None
        shown: str | None = getattr(super(), "display_type_rich", lambda ctx: None)(ctx)
        return shown


def _plain(params: list[Any]) -> list[Any]:
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
            # A required argument has no default to show (under typer < 0.17 its default
            # is click's UNSET sentinel, printed as "<object object at 0x...>").
            param.show_default = False
        elif type(param) is TyperOption:
            param.__class__ = _Option
    return params


class Command(TyperCommand):
    """A command whose help shows names and metavars, not Python types."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


class Group(TyperGroup):
    """The top level: the same help style as its commands."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


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

# Options that may appear before or after the command name (see docstore.cli.main).
GLOBAL_OPTIONS = ("--dsn", "--schema", "--kinds", "--author")
GLOBAL_FLAGS = ("--json", "--embedded")


def command(name: str | None = None, **kwargs: Any) -> Callable[[_F], _F]:
    """``app.command`` with docstore's help style."""
    register: Callable[[_F], _F] = app.command(name, cls=Command, **kwargs)
    return register


def docstore_version() -> str:
    """The installed distribution's version."""
    try:
        return _dist_version("docstore")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        print(f"docstore {docstore_version()}")
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
