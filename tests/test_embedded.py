"""The embedded PostgreSQL (pgserver): started once, for real, by the installed command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers


@pytest.mark.slow
def test_demo_with_no_database_configured_starts_the_embedded_server() -> None:
    # Not under pytest's tmp_path: any pytest session starting meanwhile (another project's,
    # another worktree's) resets /tmp/pytest-of-<user> to 0700, and the server, run as the
    # `pgserver` user when root, could then no longer reach its data directory.
    tmp_path = Path(tempfile.mkdtemp(prefix="docstore-embedded-test-"))
    docstore = Path(sys.executable).parent / "docstore"
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "DOCSTORE_URL" and k != "DOCSTORE_SCHEMA" and not k.startswith("PG")
    }
    # Two parents that do not exist yet: the first start makes them, --clean removes them.
    pgdata = tmp_path / "made" / "by-docstore" / "pgdata"
    env["DOCSTORE_EMBEDDED_DIR"] = str(pgdata)
    try:
        demo = subprocess.run(
            [str(docstore), "--json", "demo"], env=env, capture_output=True, text=True, timeout=120
        )
        assert demo.returncode == 0, demo.stderr
        report = json.loads(demo.stdout)
        assert report["schema"] == "docstore_demo" and report["edit"]["versions"] == [1, 2]
        assert str(pgdata) in report["database"]
        # The data outlives the server: a second command starts it again and finds it.
        status = subprocess.run(
            [str(docstore), "--embedded", "--schema", "docstore_demo", "--json", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0, status.stderr
        kinds = {k["kind"]: k["documents"] for k in json.loads(status.stdout)["kinds"]}
        assert kinds["conversation"] == 3 and kinds["agent"] == 2

        # demo --clean removes what the demo made, and only that.
        made = json.loads((pgdata / "docstore-made.json").read_text())
        assert made["dirs"] == [str(tmp_path / "made" / "by-docstore"), str(tmp_path / "made")]
        user_existed = made["user"] is None
        clean = subprocess.run(
            [str(docstore), "--json", "demo", "--clean"], env=env, capture_output=True, text=True, timeout=120
        )
        assert clean.returncode == 0, clean.stderr
        removed = json.loads(clean.stdout)["removed"]
        assert removed[:3] == [str(pgdata), *made["dirs"]]
        assert sorted(tmp_path.iterdir()) == []
        assert ("user pgserver" in removed) == (not user_existed)
        if os.geteuid() == 0 and user_existed:
            import pwd

            assert pwd.getpwnam("pgserver")  # there before the demo: kept
        again = subprocess.run(
            [str(docstore), "demo", "--clean"], env=env, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0 and "nothing to remove" in again.stderr
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_clean_leaves_a_directory_that_is_not_the_servers_alone(tmp_path: Path) -> None:
    from docstore.cli.embedded import EmbeddedUnavailable, clean

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(EmbeddedUnavailable, match="not the embedded server's data directory"):
        clean(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert clean(tmp_path / "absent") == []


def test_readme_says_what_the_demo_changes_as_root_and_how_to_undo_it() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (paragraph,) = [p for p in readme.split("\n\n") if p.startswith("As root")]
    for made in ("`pgserver`", "/var/cache/docstore/pgdata", "/tmp/runtime-0", "`docstore demo --clean`"):
        assert made in paragraph
