"""The command's own errors: a user mistake reported in one line (exit status 1), and
click's usage error (exit status 2)."""

from __future__ import annotations

import typer

__all__ = ["CliError", "UsageError"]

# click's UsageError (exit status 2, with the usage line): BadParameter's base class both in
# typer < 0.17, which runs on click, and in newer typer, which carries its own copy of click.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class CliError(Exception):
    """Something the user can fix; printed as ``docstore: error: <message>``.

    ``error_type`` names it in ``--json`` errors when it stands for one of docstore's
    own (``SchemaMissing``, ``InvalidCursor``) said again for a shell user.
    """

    def __init__(self, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type or type(self).__name__
