"""docs/agents.md's aurite examples (```python aurite fences) run as written: a real agent
turn through ``Aurite()`` against the stand-in LLM, each twice, on a fresh schema and then
on the used one, each run in an interpreter of its own."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from llm_standin import StandInLLM
from test_aurite_kernel import framework_env, project

from docstore import DocStore

# Runs the framework aurite in processes of its own (docs/contributing.md, markers).
pytestmark = [pytest.mark.servers, pytest.mark.framework]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "agents.md"
FENCE = re.compile(r"^```python aurite[ \t]*\n(.*?)^```", re.S | re.M)


def test_the_aurite_examples_run_on_a_fresh_and_a_used_database(
    docstore_dsn: str, tmp_path: Path, docstore_factory: Callable[..., DocStore]
) -> None:
    blocks = FENCE.findall(PAGE.read_text(encoding="utf-8"))
    assert [("install()" in b, "attach(aurite)" in b) for b in blocks] == [(True, False), (False, True)]
    install_example, attach_example = blocks
    schema = f"t_{uuid.uuid4().hex[:16]}"
    docstore_factory(schema, init=False)  # only so the schema is dropped after the test
    root = project(tmp_path / "project")
    paths = {}
    for name, code in (("attach", attach_example), ("install", install_example)):
        paths[name] = tmp_path / f"{name}.py"
        paths[name].write_text(code, encoding="utf-8")
    with StandInLLM() as attach_llm, StandInLLM() as install_llm:
        llms = {"attach": attach_llm, "install": install_llm}

        def start(name: str) -> subprocess.Popen[str]:
            # An interpreter a run, as a reader runs them: the framework's LLM client keeps
            # a logging task bound to its first event loop, which a second asyncio.run in
            # the same process can wait on for ever at exit.
            env = framework_env(docstore_dsn, schema, root, llms[name].api_base)
            env.update(LLM_API_BASE=llms[name].api_base, LLM_API_KEY="sk-local", PATH="/usr/bin:/bin")
            return subprocess.Popen(
                [sys.executable, str(paths[name])],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        # The two examples side by side, each on the fresh schema and then on the used one.
        for database in ("fresh", "used"):
            runs = {name: start(name) for name in ("attach", "install")}
            for name, run in runs.items():
                _, stderr = run.communicate(timeout=120)
                assert run.returncode == 0, f"{name} on a {database} database: {stderr[-4000:]}"
        # attach: one turn a run; install: two turns a run, the second sent the first's.
        assert [len(r["messages"]) for r in attach_llm.requests] == [1, 1]
        assert [len(r["messages"]) for r in install_llm.requests] == [2, 4, 2, 4]
