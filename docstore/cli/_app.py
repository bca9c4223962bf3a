"""The typer application, its global options, and the error handling every command shares."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ._store import Settings

__all__ = ["GLOBAL_FLAGS", "GLOBAL_OPTIONS", "app", "settings"]

app = typer.Typer(
    name="docstore",
    help="Operate a docstore: versioned, validated JSON documents and conversation logs in "
    "PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options that may appear before or after the command name (see docstore.cli.main).
GLOBAL_OPTIONS = ("--dsn", "--schema", "--kinds")
GLOBAL_FLAGS = ("--json", "--embedded")


@app.callback()
def _global(
    ctx: typer.Context,
    dsn: Annotated[str | None, typer.Option(
        help="libpq connection string or URL; else $DOCSTORE_URL, else libpq's PG* variables.",
        show_default=False)] = None,
    schema: Annotated[str, typer.Option(
        help="PostgreSQL schema holding the store (else $DOCSTORE_SCHEMA).")] = "",
    json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
    embedded: Annotated[bool, typer.Option(
        "--embedded", help="Use the embedded PostgreSQL (pgserver), data in the user's cache "
        "directory.")] = False,
    kinds: Annotated[str | None, typer.Option(
        help="module:attribute of a docstore.Registry with your own kinds (else "
        "$DOCSTORE_KINDS).", show_default=False)] = None,
) -> None:
    ctx.obj = Settings(dsn=dsn, schema=schema or os.environ.get("DOCSTORE_SCHEMA") or "docstore",
                       json=json, embedded=embedded,
                       kinds=kinds or os.environ.get("DOCSTORE_KINDS") or None,
                       schema_given=bool(schema or os.environ.get("DOCSTORE_SCHEMA")))


def settings(ctx: typer.Context) -> Settings:
    """The global options of this invocation."""
    found = ctx.find_root().obj
    assert isinstance(found, Settings)
    return found
