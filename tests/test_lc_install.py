"""The LangGraph and LangChain extras: what they require, and that a fresh virtual
environment gets them (unpinned: the newest their ranges allow, with nothing broken by
``pip check``) and runs the checkpointer, the store and the chat history on them."""

from __future__ import annotations

import email
import importlib.metadata
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from test_install import _requirements, build_wheel

# Builds wheels and virtual environments: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent

_USE_THEM = """
import sys
from typing import TypedDict
from docstore import DocStore
from docstore.langchain import DocStoreChatMessageHistory
from docstore.langgraph import DocStoreSaver, DocStoreStore
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, StateGraph

class S(TypedDict):
    n: int

with DocStore.connect(sys.argv[1], schema=sys.argv[2]) as docstore:
    docstore.init_schema()
    g = StateGraph(S)
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "inc")
    g.add_edge("inc", END)
    app = g.compile(checkpointer=DocStoreSaver(docstore))
    config = {"configurable": {"thread_id": "t"}}
    app.invoke({"n": 1}, config)
    print(app.invoke({"n": 10}, config)["n"], len(list(app.get_state_history(config))))
    store = DocStoreStore(docstore)
    store.setup()
    store.put(("users", "ada"), "profile", {"lang": "en"})
    store.put(("users", "ada"), "profile", {"lang": "fr"})
    history = DocStoreChatMessageHistory(docstore, "s1")
    history.add_messages([HumanMessage("hi"), AIMessage("hello")])
    print(
        store.get(("users", "ada"), "profile").value["lang"],
        len(store.history(("users", "ada"), "profile")),
        [m.type for m in history.messages],
    )
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


def _requires_dist(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        [meta] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.message_from_bytes(archive.read(meta))
    return [Requirement(line) for line in message.get_all("Requires-Dist") or []]


def test_the_extras_bring_only_their_frameworks_and_the_set_up_installs_both(wheel: Path) -> None:
    needs = _requirements(wheel)
    assert needs["langgraph"] == {"langgraph", "langgraph-checkpoint"}
    assert needs["langchain"] == {"langchain-core"}
    assert needs[None] == {"psycopg", "pydantic", "orjson"}
    # The development set-up installs both extras beside the dev dependency group.
    setup = (ROOT / ".ci/setup").read_text(encoding="utf-8")
    assert "langchain,langgraph," in setup and "--group dev" in setup


def test_the_suite_runs_on_versions_inside_the_extras_ranges(wheel: Path) -> None:
    for req in _requires_dist(wheel):
        if req.name in ("langgraph", "langgraph-checkpoint", "langchain-core"):
            assert importlib.metadata.version(req.name) in req.specifier, str(req)


def _constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / ".ci/constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


@pytest.mark.slow
def test_a_fresh_environment_says_which_extra_is_missing_then_runs_both(
    wheel: Path, tmp_path: Path, docstore_dsn: str
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, text=True)
    for package, extra in [("docstore.langgraph", "langgraph"), ("docstore.langchain", "langchain")]:
        bare = subprocess.run([python, "-c", f"import {package}"], capture_output=True, text=True)
        assert bare.returncode == 1
        assert f"pip install '{wheel}[{extra}]'" in bare.stderr, bare.stderr

    report = tmp_path / "report.json"
    subprocess.run(
        [*pip, "--report", str(report), f"{wheel}[langgraph,langchain]"],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = {
        canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
        for i in json.loads(report.read_text(encoding="utf-8"))["install"]
    }
    pins = _constraints()
    unpinned = sorted(name for name in installed if name not in pins and name != "docstore")
    assert unpinned == [], "add these to .ci/constraints.txt"
    assert {"langgraph", "langgraph-checkpoint", "langchain-core"} <= set(installed)
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

    schema = f"lc_install_{tmp_path.name[-8:].lower().replace('-', '_')}"
    try:
        used = subprocess.run(
            [python, "-c", _USE_THEM, docstore_dsn, schema], capture_output=True, text=True, timeout=300
        )
        assert used.returncode == 0, used.stderr
        # the graph's second run (three checkpoints a run), then the store and the history
        assert used.stdout.split() == ["11", "6", "fr", "2", "['human',", "'ai']"]
    finally:
        import psycopg

        with psycopg.connect(docstore_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
