"""The synchronous modules are generated from their asyncio sources by
.ci/async_to_sync.py (docstore/store.py from docstore/aio.py, and the agents layer's
StorageManager and session history from theirs): a generated module edited by hand, or
left behind by an edit of its source, fails here as it fails CI."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(".ci") / "async_to_sync.py"


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / SCRIPT), "--check"], capture_output=True, text=True, check=False
    )


# The generator runs in a process of its own, as in CI: outside the fast inner loop, where
# the gates' `.ci/async_to_sync.py --check` does the same (docs/contributing.md).
@pytest.mark.servers
def test_every_generated_sync_module_is_current() -> None:
    done = check(ROOT)
    assert done.returncode == 0, done.stderr


@pytest.mark.servers
@pytest.mark.parametrize(
    "edited",
    ["docstore/store.py", "docstore/aio.py"],
    ids=["the generated module edited by hand", "its async source edited alone"],
)
def test_a_generated_module_out_of_step_with_its_source_is_named_stale(tmp_path: Path, edited: str) -> None:
    for part in ("docstore", "tests", ".ci"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / edited
    path.write_text(path.read_text().replace("def get(", "def get_edited(", 1))
    done = check(tmp_path)
    assert done.returncode == 1
    assert "docstore/store.py is stale: it is generated from docstore/aio.py" in done.stderr
    assert "docstore/agents/storage.py" not in done.stderr


def test_the_transform_drops_async_and_renames_but_keeps_comments_and_docstrings() -> None:
    spec = importlib.util.spec_from_file_location("async_to_sync", ROOT / SCRIPT)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    source = (
        "async def first(store: AsyncDocStore) -> AsyncIterator[int]:\n"
        '    """Read with the asyncio store (AsyncDocStore)."""\n'
        "    async with store.transaction():  # one snapshot\n"
        "        async for doc in store.iter('agent'):\n"
        "            yield (await store.get('agent', doc.name)).version\n"
    )
    assert generator.by_tokens(source) == (
        "def first(store: DocStore) -> Iterator[int]:\n"
        '    """Read with the synchronous store (DocStore)."""\n'
        "    with store.transaction():  # one snapshot\n"
        "        for doc in store.iter('agent'):\n"
        "            yield (store.get('agent', doc.name)).version\n"
    )
