"""The command's own error: a user mistake reported in one line, exit status 1."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """Something the user can fix; printed as ``docstore: error: <message>``."""
