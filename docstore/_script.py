"""The ``docstore`` script: the command when the ``cli`` extra is installed, else a
one-line message saying how to install it (``pip install 'docstore[cli]'``)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

from .extras import install_extra

__all__ = ["main"]

# What docstore.cli imports beyond the library's own dependencies.
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
    from .cli import main as run

    return run(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
