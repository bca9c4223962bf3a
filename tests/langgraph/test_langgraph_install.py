"""What the development install brings for the LangGraph tests. The ``langgraph`` extra in a
fresh virtual environment (its hint when missing, a graph run on it) is
tests/test_lc_install.py's, which installs it together with the ``langchain`` extra."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

# Builds wheels and virtual environments: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]


def test_dev_brings_the_conformance_suite_and_postgres_saver() -> None:
    # (tests/test_lc_install.py checks the extra's own requirements.) The dev
    # dependency group is never published: read it from pyproject.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = {Requirement(r).name.lower() for r in project["dependency-groups"]["dev"]}
    assert {"langgraph-checkpoint-conformance", "langgraph-checkpoint-postgres"} <= dev
