"""The documentation's examples one after the other on one used schema, in two orders
(forward, and shuffled twice over): each runs after the others and after itself, as a
reader trying them in any order would. A module of its own so that it runs beside
tests/test_docs.py (each example alone on a fresh schema) rather than after it: the
suite's workers take a file at a time."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_docs import SHARED_PAGES, _pythonpath, examples

# Starts processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers


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
