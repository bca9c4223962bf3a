"""docs/langgraph.md's examples run as written, as tests/test_docs.py runs the other pages':
each ```python block in a fresh interpreter, alone on an empty schema, then all of them
twice over on one used schema."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_docs import examples

# Runs each example in an interpreter of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

PAGE = "docs/langgraph.md"


def _run(code: str, dsn: str, schema: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = cwd / f"example_{uuid.uuid4().hex[:6]}.py"
    script.write_text(code, encoding="utf-8")
    env = {"DOCSTORE_URL": dsn, "DOCSTORE_SCHEMA": schema, "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):  # a worktree's tests run its examples on its own code
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def test_the_page_has_a_sync_and_an_async_example() -> None:
    codes = [p.values[0] for p in examples([PAGE])]
    assert any("DocStoreSaver(store)" in c for c in codes)
    assert any("AsyncDocStoreSaver(store)" in c for c in codes)


@pytest.mark.parametrize("code", examples([PAGE]))
def test_langgraph_page_example_runs_on_an_empty_schema(
    code: str, docstore_dsn: str, docstore_factory: Callable[..., Any], tmp_path: Path
) -> None:
    schema = docstore_factory(init=False).schema  # dropped after the test
    done = _run(code, docstore_dsn, schema, tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_langgraph_page_examples_run_again_on_a_used_schema(
    docstore_dsn: str, docstore_factory: Callable[..., Any], tmp_path: Path
) -> None:
    schema = docstore_factory(init=False).schema
    codes = [p.values[0] for p in examples([PAGE])]
    for code in codes + codes[::-1]:
        done = _run(code, docstore_dsn, schema, tmp_path)
        assert done.returncode == 0, done.stderr
