"""What differs between the typer versions the command supports (0.16 up).

typer 0.16 (the newest aurite 0.4.2 allows) runs on click and raises click's exceptions;
newer typer versions carry their own copy of click and name its base error
``TyperException``.
"""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["UsageProblem", "enforce_required"]

UsageProblem: type[Exception]
_OWN_CLICK = hasattr(typer, "TyperException")
if _OWN_CLICK:
    # The one ignore that must tolerate being unused: mypy runs against typer 0.16 (the
    # attribute is missing) and against the newest (it is there).
    UsageProblem = typer.TyperException  # type: ignore[attr-defined,unused-ignore]
else:  # typer < 0.17: click's own
    import click

    UsageProblem = click.ClickException


def enforce_required(command: Any) -> None:
    """Make a missing required argument a usage error again under typer < 0.17 with click
    >= 8.3: typer gives such arguments the default None, which that click takes for a
    value, so ``docstore get llm`` would run with no name instead of exiting 2."""
    if _OWN_CLICK:
        return
    try:
        from click._utils import UNSET
    except ImportError:  # click < 8.3 treats None as missing: nothing to do
        return
    stack = [command]
    while stack:
        current = stack.pop()
        for param in getattr(current, "params", ()):
            if param.required and param.default is None:
                param.default = UNSET
        stack.extend(getattr(current, "commands", {}).values())
