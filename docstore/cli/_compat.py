"""What differs between the typer versions the command supports (0.16 up).

typer 0.16 (the newest aurite 0.4.2 allows) runs on click and raises click's exceptions;
newer typer versions carry their own copy of click and name its base error
``TyperException``.
"""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["UsageProblem", "check_required"]

UsageProblem: type[Exception]
_OWN_CLICK = hasattr(typer, "TyperException")
if _OWN_CLICK:
    # The one ignore that must tolerate being unused: mypy runs against typer 0.16 (the
    # attribute is missing) and against the newest (it is there).
    UsageProblem = typer.TyperException  # type: ignore[attr-defined,unused-ignore]
else:  # typer < 0.17: click's own
    import click

    UsageProblem = click.ClickException


def check_required(ctx: Any, params: list[Any]) -> None:
    """A missing required argument is a usage error under typer < 0.17 with click >= 8.3
    too: typer gives such arguments the default None, which that click takes for a value,
    so ``docstore get llm`` would run with no name instead of exiting 2."""
    if _OWN_CLICK:
        return
    import click

    for param in params:
        if param.required and param.name and ctx.params.get(param.name) is None:
            raise click.MissingParameter(ctx=ctx, param=param)
