"""The embedded PostgreSQL (pgserver): started once, for real, by the installed command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_with_no_database_configured_starts_the_embedded_server(tmp_path: Path) -> None:
    docstore = Path(sys.executable).parent / "docstore"
    env = {k: v for k, v in os.environ.items()
           if k != "DOCSTORE_URL" and k != "DOCSTORE_SCHEMA" and not k.startswith("PG")}
    env["DOCSTORE_EMBEDDED_DIR"] = str(tmp_path / "pgdata")
    try:
        demo = subprocess.run([str(docstore), "--json", "demo"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert demo.returncode == 0, demo.stderr
        report = json.loads(demo.stdout)
        assert report["schema"] == "docstore_demo" and report["edit"]["versions"] == [1, 2]
        assert str(tmp_path / "pgdata") in report["database"]
        # The data outlives the server: a second command starts it again and finds it.
        status = subprocess.run([str(docstore), "--embedded", "--schema", "docstore_demo",
                                 "--json", "status"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert status.returncode == 0, status.stderr
        kinds = {k["kind"]: k["documents"] for k in json.loads(status.stdout)["kinds"]}
        assert kinds["conversation"] == 3 and kinds["agent"] == 2
    finally:
        shutil.rmtree(tmp_path / "pgdata", ignore_errors=True)
