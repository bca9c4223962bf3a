"""The kind handles' types are asserted, not only described: mypy --strict checks the
``assert_type`` lines of tests/typing/ against docstore's signatures."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

TYPING = Path(__file__).resolve().parent / "typing"


@pytest.mark.slow
def test_kind_handles_type_what_the_store_returns() -> None:
    out, err, status = api.run(["--strict", "--no-incremental", "--cache-dir=/dev/null", str(TYPING)])
    assert status == 0, out + err
    assert "Success" in out
