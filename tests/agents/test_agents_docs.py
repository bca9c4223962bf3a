"""docs/agents.md's examples run as written, against the test database.

Each ```python block runs in a fresh interpreter with AURITE_* (and DOCSTORE_URL) pointing
at a schema of its own, with persistence on and off (AURITE_ENABLE_DB). They run with the
other pages' examples, in several orders, in tests/test_docs_any_order.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from docstore import DocStore

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

PAGE = Path(__file__).resolve().parents[2] / "docs" / "agents.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.S | re.M)


def examples() -> list[Any]:
    text = PAGE.read_text(encoding="utf-8")
    # The framework-storage example runs in its own test below, on a fresh and a used database.
    return [
        pytest.param(m.group(1), id=f"agents.md:{text.count(chr(10), 0, m.start()) + 1}")
        for m in FENCE.finditer(text)
        if "SessionManager" not in m.group(1)
    ]


def test_the_page_has_runnable_examples() -> None:
    assert len(examples()) >= 3


def test_the_page_links_the_env_example_that_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert "(../docstore/agents/.env.example)" in text
    env_example = (PAGE.parent / "../docstore/agents/.env.example").read_text(encoding="utf-8")
    for var in (
        "AURITE_ENABLE_DB",
        "AURITE_DB_URL",
        "AURITE_DB_HOST",
        "AURITE_DB_PORT",
        "AURITE_DB_USER",
        "AURITE_DB_PASSWORD",
        "AURITE_DB_NAME",
        "AURITE_DB_SCHEMA",
        "AURITE_DB_READ_URL",
    ):
        assert var in env_example


@pytest.mark.parametrize("code", examples())
@pytest.mark.parametrize("persistence", ["on", "off"])
def test_agents_page_example_runs(
    code: str, persistence: str, docstore_dsn: str, tmp_path: Path, docstore_factory: Callable[..., DocStore]
) -> None:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    docstore_factory(schema, init=False)  # only so the schema is dropped after the test
    # An example that opens a DocStore of its own (not the framework's storage) gets a
    # schema of its own too, rather than writing into "docstore" of the test database.
    own = f"{schema}_own"
    docstore_factory(own, init=False)
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "AURITE_ENABLE_DB": persistence,
            "AURITE_DB_URL": docstore_dsn,
            "AURITE_DB_SCHEMA": schema,
            "DOCSTORE_URL": docstore_dsn,
            "DOCSTORE_SCHEMA": own,
            # PYTHONPATH passes through: a worktree's tests run its examples on its own code.
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        },
    )
    assert done.returncode == 0, done.stderr
    if persistence == "off":  # nothing touched the database
        with docstore_factory(schema, init=False).pool.connection() as conn:
            assert conn.execute("SELECT to_regnamespace(%s)", [schema]).fetchone() == (None,)


def test_the_framework_storage_example_runs_on_a_fresh_and_a_used_database(
    docstore_dsn: str, tmp_path: Path, docstore_factory: Callable[..., DocStore]
) -> None:
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## docstore as the framework's storage") :]
    code = FENCE.search(section)
    assert code is not None and "SessionManager" in code.group(1)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    docstore_factory(schema, init=False)  # only so the schema is dropped after the test
    example = tmp_path / "example.py"
    example.write_text(code.group(1), encoding="utf-8")
    # Both runs in one interpreter, each as a script: the framework's imports take seconds.
    script = tmp_path / "twice.py"
    script.write_text(
        "import runpy, sys\n"
        "for database in ('fresh', 'used'):\n"
        "    print(database, file=sys.stderr)\n"
        f"    runpy.run_path({str(example)!r}, run_name='__main__')\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "AURITE_ENABLE_DB": "1",
            "AURITE_DB_URL": docstore_dsn,
            "AURITE_DB_SCHEMA": schema,
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        },
    )
    assert done.returncode == 0, done.stderr
    assert "used" in done.stderr.splitlines()  # the second run happened
