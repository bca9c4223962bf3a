"""The documentation's examples run as written, on a fresh database and on a used one.

Every ```python block of the pages below runs in a fresh interpreter against the test
database, each alone on an empty schema (and all of them one after the other on one
schema, in two orders, in tests/test_docs_any_order.py). A block
whose fence says ``python no-run`` is shown, not run (docs/testing.md's blocks run in
tests/test_testing_plugin.py instead).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from docstore import DocStore

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    "README.md",
    "docs/index.md",
    "docs/api.md",
    "docs/history.md",
    "docs/reliability.md",
    "docs/changes.md",
    "docs/upgrading.md",
    "docs/observability.md",
]
# Run with the others in the any-order test (tests/test_docs_any_order.py); alone in
# tests/agents/test_agents_docs.py.
SHARED_PAGES = [*PAGES, "docs/agents.md"]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.S | re.M)


def examples(pages: list[str] = PAGES) -> list[Any]:
    found = []
    for page in pages:
        text = (ROOT / page).read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(pytest.param(match.group(1), id=f"{page}:{line}"))
    return found


def test_every_page_has_a_runnable_example() -> None:
    pages = {str(p.id).split(":")[0] for p in examples()}
    assert pages == set(PAGES)


@pytest.mark.parametrize("code", examples())
def test_documentation_example_runs(code: str, docstore_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS docstore CASCADE")
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        # PYTHONPATH passes through: a worktree's tests run its examples on its own code.
        env={"DOCSTORE_URL": docstore_dsn, "PATH": "/usr/bin:/bin", **_pythonpath()},
    )
    assert done.returncode == 0, done.stderr


def _pythonpath() -> dict[str, str]:
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def test_the_performance_pages_index_recipe_runs(docstore_dsn: str) -> None:
    text = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    recipes = re.findall(r"^```sql\n(.*?)^```", text, re.S | re.M)
    assert recipes
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS docstore CASCADE")
    with DocStore.connect(docstore_dsn) as store:
        store.init_schema()
    with psycopg.connect(docstore_dsn, autocommit=True) as conn:
        for recipe in recipes:
            conn.execute(recipe)
        found = conn.execute("SELECT to_regclass('docstore.versions_data_gin_idx')").fetchone()
        assert found is not None and found[0]
