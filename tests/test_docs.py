"""The documentation's examples run as written, on a fresh database and on a used one.

Every ```python block of the pages below runs in a fresh interpreter against the test
database: each alone on an empty schema, then all of them one after the other on one
schema in two orders (forward, and shuffled twice over), so that each runs
after the others and after itself, as a reader trying them in any order would. A block
whose fence says ``python no-run`` is shown, not run (docs/testing.md's blocks run in
tests/test_testing_plugin.py instead).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import uuid
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
# Run with the others in the any-order test; alone in tests/agents/test_agents_docs.py.
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


def _orders() -> list[Any]:
    ids = [str(p.id) for p in examples(SHARED_PAGES)]
    shuffled = ids[:]
    random.Random(17).shuffle(shuffled)
    again = ids[:]
    random.Random(1717).shuffle(again)
    return [
        pytest.param(ids, id="forward"),
        pytest.param(shuffled + again, id="shuffled-twice"),
    ]


@pytest.mark.parametrize("order", _orders())
def test_the_examples_run_in_any_order_on_a_used_database(
    order: list[str], docstore_dsn: str, docstore_factory: Any, tmp_path: Path
) -> None:
    code = {str(p.id): p.values[0] for p in examples(SHARED_PAGES)}
    schema = f"t_{uuid.uuid4().hex[:16]}"
    docstore_factory(schema, init=False)  # only so that the schema is dropped after the test
    files = []
    for i, example in enumerate(order):
        path = tmp_path / f"{i:02d}_{re.sub(r'[^a-z0-9]+', '_', example)}.py"
        path.write_text(code[example], encoding="utf-8")
        files.append(str(path))
    env = {
        "PATH": "/usr/bin:/bin",
        "DOCSTORE_URL": docstore_dsn,
        "DOCSTORE_SCHEMA": schema,
        "AURITE_ENABLE_DB": "1",
        "AURITE_DB_URL": docstore_dsn,
        "AURITE_DB_SCHEMA": schema,
        **_pythonpath(),
    }
    # Each in a fresh interpreter, as a reader runs them (one interpreter for all of them
    # let one example's leftovers, a feed's thread or a pool, reach the next).
    for i, file in enumerate(files):
        done = subprocess.run(
            [sys.executable, file], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
        )
        assert done.returncode == 0, f"{order[i]} after {order[:i]}:\n{done.stderr}"


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
