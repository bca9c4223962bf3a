"""``docstore aurite -- COMMAND...``: the agent framework's own commands, on docstore.

In the style of ``opentelemetry-instrument`` and ``ddtrace-run``: the command runs in place
of this one, with a ``sitecustomize`` first on its PYTHONPATH that calls
:func:`docstore.agents.aurite.install` in every Python process it starts (``aurite api``
in development mode re-executes uvicorn, whose reloaded workers are new processes).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..agents import aurite as integration
from ._app import command
from ._errors import CliError

__all__ = ["aurite", "launch_environment"]

BOOTSTRAP = Path(integration.__file__).with_name("_bootstrap")


def launch_environment(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with what makes the processes it starts call ``install()``."""
    env = dict(environ)
    env[integration.INSTALL_VARIABLE] = "1"
    # The framework's own programs (``aurite api`` execs ``uvicorn``) sit beside this
    # interpreter in a virtualenv that may not be activated: found last, never first.
    here = str(Path(sys.executable).parent)
    path = env.get("PATH", os.defpath)
    if here not in path.split(os.pathsep):
        env["PATH"] = path + os.pathsep + here
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(BOOTSTRAP) + (os.pathsep + rest if rest else "")
    return env


def _program(name: str) -> str:
    # The framework's script sits beside this interpreter in a virtualenv that is not
    # activated (.venv/bin/docstore aurite -- aurite api).
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise CliError(f"{name}: command not found (is aurite installed in this environment?)")
    return found


@command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def aurite(
    ctx: typer.Context,
    argv: Annotated[
        list[str],
        typer.Argument(
            metavar="COMMAND", help="The command to run, such as `aurite api` or `aurite run AGENT`."
        ),
    ],
) -> None:
    """Run the framework's own command with its sessions and configs in docstore."""
    given = [f"--{name}" for name, value in ctx.find_root().params.items() if value]
    if given:
        raise CliError(
            f"docstore aurite does not use {', '.join(given)}: the framework's processes read "
            "the database from AURITE_DB_URL (or AURITE_DB_USER, AURITE_DB_NAME, ...) and "
            "AURITE_DB_SCHEMA"
        )
    integration.preflight()  # names what is wrong here, not in the framework's log
    program = _program(argv[0])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(program, [argv[0], *argv[1:]], launch_environment(dict(os.environ)))
