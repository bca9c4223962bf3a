"""The documentation's examples run as written.

Every ```python block of the pages below runs in a fresh interpreter against the test
database, with DOCSTORE_URL pointing at it and the `docstore` schema emptied first. A block
whose fence says ``python no-run`` is shown, not run (docs/testing.md's blocks run in
tests/test_testing_plugin.py instead).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from docstore import DocStore

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "docs/index.md", "docs/api.md", "docs/history.md",
         "docs/reliability.md", "docs/changes.md"]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.S | re.M)


def examples() -> list[Any]:
    found = []
    for page in PAGES:
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
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={"DOCSTORE_URL": docstore_dsn, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr


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
        assert conn.execute("SELECT to_regclass('docstore.versions_data_gin_idx')").fetchone()[0]
