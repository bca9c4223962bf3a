"""The programs on docstore: the ``docstore`` command (docs/cli.md), its demo
(:mod:`docstore.cli.demo`) and its embedded PostgreSQL (:mod:`docstore.cli.embedded`).

Importing this package needs nothing beyond the library: :func:`main` runs the command
when the ``cli`` extra is installed, else says in one line how to install it (``pip
install 'docstore[cli]'``).

Exit status: 0 success; 1 a user error, reported in one line on stderr (no traceback);
2 a usage error (bad option or argument); 130 interrupted.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

from ..extras import install_extra

__all__ = ["main"]

# What the command imports beyond the library's own dependencies.
CLI_MODULES = ("typer", "rich", "yaml")


def missing_cli_modules() -> list[str]:
    """The modules of the ``cli`` extra that cannot be imported here."""
    return [name for name in CLI_MODULES if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command, or say which extra it needs; returns the exit status."""
    missing = missing_cli_modules()
    if missing:
        print(
            f"docstore: the command needs the 'cli' extra ({', '.join(missing)} "
            f"not installed): {install_extra('cli')}",
            file=sys.stderr,
        )
        return 1
    from ._main import main as run

    return run(argv)
