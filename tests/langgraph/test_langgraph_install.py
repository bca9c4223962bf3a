"""``docstore[langgraph]`` in a fresh virtual environment, unpinned (tests/test_lc_install.py
installs it with .ci/constraints.txt): the extra brings the newest LangGraph its ranges
allow, with nothing broken (``pip check``), and the checkpointer runs a graph there;
without the extra, ``docstore.langgraph`` says which extra it needs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import psycopg
import pytest
from packaging.requirements import Requirement
from test_install import build_wheel

# Builds wheels and virtual environments: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]

_GRAPH = """
import sys
from typing import TypedDict
from langgraph.graph import END, START, StateGraph
from docstore import DocStore
from docstore.langgraph import DocStoreSaver

class S(TypedDict):
    n: int

g = StateGraph(S)
g.add_node("inc", lambda s: {"n": s["n"] + 1})
g.add_edge(START, "inc")
g.add_edge("inc", END)
with DocStore.connect(sys.argv[1], schema=sys.argv[2]) as store:
    store.init_schema()
    app = g.compile(checkpointer=DocStoreSaver(store))
    config = {"configurable": {"thread_id": "t"}}
    app.invoke({"n": 1}, config)
    print(app.invoke({"n": 10}, config)["n"], len(list(app.get_state_history(config))))
"""


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_dev_brings_the_conformance_suite_and_postgres_saver() -> None:
    # (tests/test_lc_install.py checks the extra's own requirements, pinned.) The dev
    # dependency group is never published: read it from pyproject.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = {Requirement(r).name.lower() for r in project["dependency-groups"]["dev"]}
    assert {"langgraph-checkpoint-conformance", "langgraph-checkpoint-postgres"} <= dev


@pytest.mark.slow
def test_docstore_langgraph_installs_fresh_and_runs_a_graph(tmp_path: Path, docstore_dsn: str) -> None:
    wheel = build_wheel(ROOT, tmp_path / "wheel")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"

    _pip(python, str(wheel))
    bare = subprocess.run([str(python), "-c", "import docstore.langgraph"], capture_output=True, text=True)
    assert bare.returncode == 1
    assert (
        f"docstore.langgraph needs langgraph, which is not installed: pip install '{wheel}[langgraph]'"
        in bare.stderr
    )

    _pip(python, f"{wheel}[langgraph]")
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        run = subprocess.run(
            [str(python), "-c", _GRAPH, docstore_dsn, schema], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["11", "6"]  # the second run's state; three checkpoints a run
    finally:
        with psycopg.connect(docstore_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
