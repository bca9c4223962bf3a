"""docs/langgraph-store.md and docs/langchain.md run as written: each ```python block
alone on a fresh schema, then all of them twice over on one schema (as a reader runs them
again), and the vector-search block, fenced no-run because the shared server has no
pgvector, on an embedded server that has it."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lc_support import pgvector_server
from test_docs import FENCE, _pythonpath, examples

from docstore import DocStore

# Runs each example in an interpreter of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["docs/langgraph-store.md", "docs/langchain.md"]
NO_RUN = re.compile(r"^```python no-run[ \t]*\n(.*?)^```", re.S | re.M)


def _run(code: str, dsn: str, schema: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = cwd / f"example_{uuid.uuid4().hex[:8]}.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"DOCSTORE_URL": dsn, "DOCSTORE_SCHEMA": schema, "PATH": "/usr/bin:/bin", **_pythonpath()},
    )


def test_each_page_has_runnable_examples() -> None:
    assert {str(p.id).split(":")[0] for p in examples(PAGES)} == set(PAGES)
    assert FENCE  # the same fences as tests/test_docs.py


@pytest.mark.parametrize("code", examples(PAGES))
def test_an_example_runs_on_a_fresh_schema(
    code: str, docstore_dsn: str, docstore_factory: Callable[..., DocStore], tmp_path: Path
) -> None:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    docstore_factory(schema, init=False)  # only so that the schema is dropped after the test
    done = _run(code, docstore_dsn, schema, tmp_path)
    assert done.returncode == 0, done.stderr


def test_the_examples_run_again_on_a_used_schema(
    docstore_dsn: str, docstore_factory: Callable[..., DocStore], tmp_path: Path
) -> None:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    docstore_factory(schema, init=False)
    blocks: list[Any] = examples(PAGES)
    for param in blocks + blocks[::-1]:
        done = _run(param.values[0], docstore_dsn, schema, tmp_path)
        assert done.returncode == 0, f"{param.id}:\n{done.stderr}"


@pytest.mark.slow
def test_the_vector_search_example_runs_where_pgvector_is(tmp_path: Path) -> None:
    [code] = [
        c for c in NO_RUN.findall((ROOT / "docs/langgraph-store.md").read_text()) if "vector search" in c
    ]
    with pgvector_server() as dsn:
        first = _run(code, dsn, "docstore", tmp_path)
        assert first.returncode == 0, first.stderr
        again = _run(code, dsn, "docstore", tmp_path)
        assert again.returncode == 0, again.stderr
