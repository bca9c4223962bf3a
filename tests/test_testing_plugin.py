"""docstore.testing, as a user's project meets it: run through pytest's pytester."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from docstore.extras import install_extra

# Starts servers or processes of its own: outside the fast inner loop (docs/contributing.md).
pytestmark = pytest.mark.servers

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
MODELS = """
from pydantic import BaseModel


class AgentConfig(BaseModel):
    name: str
    model: str


class Message(BaseModel):
    role: str
    content: str
"""


def doc_config() -> str:
    """docs/testing.md's pytest configuration, as a user copies it into pyproject.toml."""
    (block,) = re.findall(r"^ *```toml\n(.*?)^ *```", DOC.read_text(), re.S | re.M)
    return textwrap.dedent(block)


def doc_blocks() -> dict[str, str]:
    """docs/testing.md's example files, keyed by the file name in their first line."""
    blocks = re.findall(r"^```python no-run\n# (\S+)\n(.*?)^```", DOC.read_text(), re.S | re.M)
    return {name: code for name, code in blocks}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.mkpydir("myapp")
    (pytester.path / "myapp" / "models.py").write_text(MODELS)
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_the_documented_files_pass_when_copied_with_no_warning(pytester: pytest.Pytester) -> None:
    blocks = doc_blocks()
    assert set(blocks) == {"conftest.py", "test_agents.py"}
    pytester.mkpydir("myapp")
    (pytester.path / "myapp" / "models.py").write_text(MODELS)
    pytester.makepyprojecttoml(doc_config())
    pytester.makeconftest(blocks["conftest.py"])
    pytester.makepyfile(test_agents=blocks["test_agents.py"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2, warnings=0)
    assert "warnings summary" not in result.stdout.str()


def test_without_the_configuration_async_tests_fail_as_the_page_says(pytester: pytest.Pytester) -> None:
    blocks = doc_blocks()
    pytester.mkpydir("myapp")
    (pytester.path / "myapp" / "models.py").write_text(MODELS)
    pytester.makeconftest(blocks["conftest.py"])
    pytester.makepyfile(test_agents=blocks["test_agents.py"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])
    assert "async def functions are not natively supported" in " ".join(DOC.read_text().split())


def test_without_pytest_postgresql_the_fixtures_name_the_extra(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCSTORE_TEST_URL", raising=False)
    pytester.makepyfile(
        test_needs_db="""
        def test_needs_db(docstore_store):
            pass
    """
    )
    # pytest-postgresql unimportable, as when it is not installed: not loaded as a plugin,
    # and an import of it fails.
    pytester.makeconftest("""
        import sys

        sys.modules["pytest_postgresql"] = None
    """)
    result = pytester.runpytest_subprocess("-p", "no:pytest_postgresql", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert (
        "docstore fixtures: the fixtures need pytest-postgresql, which is not installed: "
        f"{install_extra('testing')} "
    ) in result.stdout.str()


def test_each_fixture_works_in_a_users_test_file(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_fixtures="""
        from docstore import AsyncDocStore, DocStore, Registry

        def test_store(docstore_store):
            docstore_store.register("agent", dict)
            assert docstore_store.put("agent", "a", {"x": 1}).version == 1

        def test_factory(docstore_factory):
            one, two = docstore_factory(), docstore_factory(schema="custom_schema")
            assert two.schema == "custom_schema" and one.schema != two.schema
            assert isinstance(one, DocStore)

        def test_kinds_and_pool(docstore_kinds, docstore_pool):
            assert isinstance(docstore_kinds, Registry)
            with docstore_pool.connection() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)

        async def test_async(docstore_async_store):
            assert isinstance(docstore_async_store, AsyncDocStore)
            docstore_async_store.register("agent", dict)
            assert (await docstore_async_store.put("agent", "a", {"x": 1})).version == 1
    """
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_two_tests_do_not_see_each_others_data(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_isolation="""
        import pytest

        @pytest.mark.parametrize("run", range(4))
        def test_starts_empty_then_writes(docstore_store, run):
            docstore_store.register("agent", dict)
            assert docstore_store.list("agent") == []
            docstore_store.put("agent", "shared-name", {"run": run})
    """
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4)


def test_an_unreachable_server_fails_with_a_clear_error_and_never_skips(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCSTORE_TEST_URL", raising=False)
    project.makepyfile(
        test_unreachable="""
        def test_needs_db(docstore_store):
            pass
    """
    )
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--postgresql-host=127.0.0.1", "--postgresql-port=1"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*docstore fixtures: cannot reach PostgreSQL at *127.0.0.1:1*"])
    assert "skipped" not in result.stdout.str()


def test_proc_mode_as_root_says_postgresql_refuses_root(project: pytest.Pytester) -> None:
    import os

    project.makepyfile(
        test_proc="""
        def test_needs_db(docstore_store):
            pass
    """
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--docstore-server=proc")
    if os.geteuid() == 0:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*refuses to run as root*"])
    else:  # a user's machine: pytest-postgresql starts its own server
        result.assert_outcomes(passed=1)
