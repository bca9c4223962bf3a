"""The ``docstore`` command on typer (docs/cli.md); docstore.cli.main runs it once it
knows the ``cli`` extra is installed."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer

from ..agents import ConfigFileError
from ..dsn import redact
from ..errors import DocStoreError
from . import _aurite, _docs, _edit, _ops, _watch  # noqa: F401  (registers the commands)
from ._app import app
from ._compat import UsageProblem
from ._errors import CliError
from ._out import clean

__all__ = ["main"]


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _wants_json(args: list[str]) -> bool:
    for arg in args:
        if arg in ("--", "bench"):
            return False
        if arg == "--json":
            return True
    return False


def _report(message: str, *, kind: str, status: int, as_json: bool, **extra: Any) -> None:
    """An error on stderr: one line, or with --json one JSON document."""
    message = clean(message)  # a name in a message may hold terminal escapes
    if as_json:
        sys.stderr.write(
            json.dumps(
                {"error": {"type": kind, "message": message, **extra, "exit_status": status}},
                ensure_ascii=False,
            )
            + "\n"
        )
    else:
        print(f"docstore: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(args)
    # The pool logs each failed connection attempt; the command reports the failure once.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    command = typer.main.get_command(app)
    try:
        result: object = command.main(args=args, prog_name="docstore", standalone_mode=False)
        if result == 130:  # typer turns Ctrl-C into exit status 130, silently
            raise KeyboardInterrupt
        return result if isinstance(result, int) else 0
    except UsageProblem as exc:  # usage errors: exit 2, with the usage line
        show = getattr(exc, "show", None)
        if as_json:
            formatter = getattr(exc, "format_message", None)  # its text names the option
            text = str(formatter()) if formatter is not None else str(exc)
            _report(_one_line(text), kind="UsageError", status=getattr(exc, "exit_code", 2), as_json=True)
        elif show is not None:
            show()
        else:
            print(f"docstore: error: {exc}", file=sys.stderr)
        code: int = getattr(exc, "exit_code", 2)
        return code
    except typer.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click's Ctrl-C (typer < 0.17)
            _report("interrupted", kind="Interrupted", status=130, as_json=as_json)
            return 130
        _report("aborted", kind="Aborted", status=1, as_json=as_json)
        return 1
    except KeyboardInterrupt:
        _report("interrupted", kind="Interrupted", status=130, as_json=as_json)
        return 130
    except ConfigFileError as exc:  # one problem per line, after a line saying how many
        head, *lines = _redact(str(exc), args).splitlines()
        warnings = [_redact(str(warning), args) for warning in exc.warnings]
        if as_json:
            _report(
                head,
                kind="ConfigFileError",
                status=1,
                as_json=True,
                problems=[clean(line.strip()) for line in lines],
                warnings=[clean(w) for w in warnings],
            )
            return 1
        print(f"docstore: error: {clean(head)}", file=sys.stderr)
        for line in lines:
            print(clean(line, newlines=True), file=sys.stderr)
        for warning in warnings:
            print(f"warning: {clean(warning)}", file=sys.stderr)
        return 1
    except (CliError, DocStoreError, ValueError, OSError) as exc:
        message = _redact(_one_line(str(exc)) or type(exc).__name__, args)
        kind = exc.error_type if isinstance(exc, CliError) else type(exc).__name__
        _report(message, kind=kind, status=1, as_json=as_json)
        return 1
    finally:
        sys.stdout.flush()


def _redact(message: str, args: list[str]) -> str:
    """``message`` without the password of any DSN from the arguments or the environment."""
    dsns = [a.split("=", 1)[1] for a in args if a.startswith("--dsn=")]
    dsns += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--dsn"]
    dsns += [os.environ.get("DOCSTORE_URL", ""), os.environ.get("AURITE_DB_URL", "")]
    for dsn in dsns:
        if dsn:
            message = redact(message, dsn)
    for variable in ("PGPASSWORD", "AURITE_DB_PASSWORD"):
        password = os.environ.get(variable)
        if password:
            message = message.replace(password, "***")
    return message
