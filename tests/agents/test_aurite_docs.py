"""docs/agents.md's aurite examples (```python aurite fences) run as written: a real agent
turn through ``Aurite()`` against the stand-in LLM, each twice, on a fresh schema and then
on the used one. ``attach()``'s runs come first: ``install()`` patches the framework for
the rest of the process."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from llm_standin import StandInLLM
from test_aurite_kernel import framework_env, project

from docstore import DocStore

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
    runs = []
    for name, code in (("attach", attach_example), ("install", install_example)):
        path = tmp_path / f"{name}.py"
        path.write_text(code, encoding="utf-8")
        runs += [(name, database, str(path)) for database in ("fresh", "used")]
    script = tmp_path / "all.py"
    script.write_text(
        "import runpy, sys\n"
        f"for name, database, path in {runs!r}:\n"
        "    print(name, database, file=sys.stderr)\n"
        "    runpy.run_path(path, run_name='__main__')\n",
        encoding="utf-8",
    )
    with StandInLLM() as llm:
        env = framework_env(docstore_dsn, schema, root, llm.api_base)
        env.update(LLM_API_BASE=llm.api_base, LLM_API_KEY="sk-local", PATH="/usr/bin:/bin")
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=root, env=env
        )
        assert done.returncode == 0, done.stderr[-4000:]
        assert "install used" in done.stderr
        # attach: one turn a run; install: two turns a run, the second sent the first's.
        assert [len(r["messages"]) for r in llm.requests] == [1, 1, 2, 4, 2, 4]
