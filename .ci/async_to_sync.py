#!/usr/bin/env python3
"""Generate docstore's synchronous modules from their asyncio sources.

The async module is the one written by hand; its sync twin is the same code with
``async``/``await`` taken out and the names of :data:`RENAMES` replaced (AsyncDocStore ->
DocStore, ...), in code, docstrings and comments alike, as psycopg's
tools/async_to_sync.py does. The transform works on tokens, so comments and the layout of
the source survive; its result is checked against an AST transform of the source (the
same edits made on the syntax tree), so every edit lands on whole tokens and none changes
code it was not meant to touch. It cannot tell a wrong rename rule: both sides apply it.
What the renames make of the code is checked by mypy and the suite, which run the
generated modules.
Then ``ruff check --fix --select I,RUF022`` and ``ruff format`` give it the tree's layout.

    .venv/bin/python .ci/async_to_sync.py           # rewrite the generated modules
    .venv/bin/python .ci/async_to_sync.py --check   # exit 1 naming any stale one

Where the sync code must differ, write the async source so that it reads right once
converted (the two modules may only differ by the renames below); there is no escape hatch.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import itertools
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (async source, generated sync module), relative to the repository's top level.
PAIRS = [
    ("docstore/aio.py", "docstore/store.py"),
    ("docstore/_handles_async.py", "docstore/_handles.py"),
    ("docstore/_spare_async.py", "docstore/_spare.py"),
    ("docstore/agents/storage_async.py", "docstore/agents/storage.py"),
    ("docstore/agents/_history_async.py", "docstore/agents/_history.py"),
    # The tests of both shells: written once, async, against typed AsyncDocStore fixtures.
    ("tests/test_snapshot_async.py", "tests/test_snapshot.py"),
    ("tests/test_log_async.py", "tests/test_log.py"),
    ("tests/test_kinds_async.py", "tests/test_kinds.py"),
    ("tests/test_write_checks_async.py", "tests/test_write_checks.py"),
    ("tests/test_filters_async.py", "tests/test_filters.py"),
    ("tests/test_store_async.py", "tests/test_store.py"),
    ("tests/test_hostile_input_async.py", "tests/test_hostile_input.py"),
    ("tests/test_restore_async.py", "tests/test_restore.py"),
    ("tests/test_durability_async.py", "tests/test_durability.py"),
    ("tests/test_otel_async.py", "tests/test_otel.py"),
    ("tests/test_spare_async.py", "tests/test_spare.py"),
]

# Identifiers of the async code and their sync counterparts: renamed as whole words in
# code, and in docstrings, comments and strings too.
RENAMES = {
    "AsyncStorageManager": "StorageManager",
    "AsyncHistory": "History",
    "AsyncConfigWatch": "ConfigWatch",
    "AsyncIterator": "Iterator",
    "asynccontextmanager": "contextmanager",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncSparePool": "SparePool",
    "AsyncConnection": "Connection",
    "AsyncDocStore": "DocStore",
    "AsyncDocuments": "Documents",
    "AsyncLog": "Log",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "docstore_async_transaction": "docstore_transaction",
}

# The tests' fixtures and helpers of the async shell and their sync counterparts, renamed
# in the test modules only (on top of RENAMES), as psycopg's tests name ``aconn`` ``conn``.
TEST_RENAMES = {
    "astore": "store",
    "astore_both_layouts": "store_both_layouts",
    "adocstore_factory": "docstore_factory",
    "docstore_async_store": "docstore_store",
    "AsyncFactory": "Factory",
    "acount_rows": "count_rows",
    "alayout_of": "layout_of",
}

# Module names, renamed in import statements only: prose names the files as they are.
MODULE_RENAMES = {
    "aio": "store",
    "storage_async": "storage",
    "_history_async": "_history",
    "_handles_async": "_handles",
    "_spare_async": "_spare",
}

# Phrases of docstrings and comments, replaced before the identifiers.
PHRASES = {
    "the asyncio store": "the synchronous store",
    "(asyncio API)": "(synchronous API)",
    "docstore.aio": "docstore.store",
}

HEADER = (
    "# Generated from {source} by .ci/async_to_sync.py: do not edit.\n"
    "# Change {source} and run `.venv/bin/python .ci/async_to_sync.py`.\n"
)


def _words(renames: dict[str, str]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(re.escape(word) for word in renames) + r")\b")


_RENAMES = RENAMES  # those of the pair being converted: RENAMES, plus TEST_RENAMES in tests/
_WORDS = _words(RENAMES)


def _use_renames(target_path: str) -> None:
    global _RENAMES, _WORDS
    _RENAMES = {**RENAMES, **TEST_RENAMES} if target_path.startswith("tests/") else RENAMES
    _WORDS = _words(_RENAMES)


def _text(text: str) -> str:
    """Prose (a docstring, a comment, a string) with the async names replaced."""
    for old, new in PHRASES.items():
        text = text.replace(old, new)
    return _WORDS.sub(lambda m: _RENAMES[m.group(1)], text)


def _name(name: str, in_import: bool = False) -> str:
    if in_import and name in MODULE_RENAMES:
        return MODULE_RENAMES[name]
    return _RENAMES.get(name, name)


def by_tokens(source: str) -> str:
    """``source`` without ``async``/``await`` and with the renames, layout and comments kept."""
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    edits: list[tuple[int, int, str]] = []
    in_import = False
    line_start = True
    for tok, following in itertools.pairwise(tokens):
        if line_start and tok.type == tokenize.NAME:
            in_import = tok.string in ("from", "import")
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            line_start = tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
        if tok.type == tokenize.NAME and tok.string in ("async", "await"):
            if following.start[0] != tok.start[0]:
                raise SyntaxError(f"line {tok.start[0]}: {tok.string} at the end of a line")
            edits.append((offset(tok.start), offset(following.start), ""))
        elif tok.type == tokenize.NAME and _name(tok.string, in_import) != tok.string:
            edits.append((offset(tok.start), offset(tok.end), _name(tok.string, in_import)))
        elif tok.type in _TEXT_TOKENS and _text(tok.string) != tok.string:
            edits.append((offset(tok.start), offset(tok.end), _text(tok.string)))
    out = source
    for start, end, new in reversed(edits):
        out = out[:start] + new + out[end:]
    return out


# From Python 3.12 an f-string is several tokens, its literal text in FSTRING_MIDDLE ones.
_TEXT_TOKENS = frozenset(
    {
        tokenize.STRING,
        tokenize.COMMENT,
        *([tokenize.FSTRING_MIDDLE] if hasattr(tokenize, "FSTRING_MIDDLE") else []),
    }
)


class _Unasync(ast.NodeTransformer):
    """The token transform, done on the syntax tree: what the output must parse to."""

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        self.generic_visit(node)
        fields = {f: getattr(node, f) for f in node._fields}
        return ast.FunctionDef(**fields)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.AST:
        self.generic_visit(node)
        return ast.With(items=node.items, body=node.body, type_comment=node.type_comment)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.AST:
        self.generic_visit(node)
        fields = {f: getattr(node, f) for f in node._fields}
        return ast.For(**fields)

    def visit_Await(self, node: ast.Await) -> ast.AST:
        value: ast.AST = self.visit(node.value)
        return value

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.is_async = 0
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("name", "id", "attr", "arg", "asname"):
            value = getattr(node, field, None)
            if isinstance(value, str):
                setattr(node, field, _name(value))
        if isinstance(node, ast.ImportFrom) and node.module:
            node.module = ".".join(_name(part, in_import=True) for part in node.module.split("."))
        if isinstance(node, ast.alias):
            node.name = ".".join(_name(part, in_import=True) for part in node.name.split("."))
            node.asname = node.asname and _name(node.asname, in_import=True)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = _text(node.value)
        return node


def by_tree(source: str) -> str:
    """The syntax tree ``by_tokens(source)`` must have, dumped one field a line."""
    return ast.dump(_Unasync().visit(ast.parse(source)), include_attributes=False, indent=1)


def _ruff() -> str:
    beside = Path(sys.executable).parent / "ruff"
    found = str(beside) if beside.exists() else shutil.which("ruff")
    if found is None:
        raise SystemExit("async_to_sync: ruff is not installed (pip install --group dev)")
    return found


def _run_ruff(args: list[str], source: str, target: str) -> str:
    done = subprocess.run(
        [_ruff(), *args, "--stdin-filename", target, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"async_to_sync: ruff {args[0]} failed on {target}:\n{done.stderr}{done.stdout}")
    return done.stdout


def generate(source_path: str, target_path: str) -> str:
    """The sync module ``target_path`` as generated from ``source_path``."""
    source = (ROOT / source_path).read_text()
    _use_renames(target_path)
    converted = by_tokens(source)
    expected = by_tree(source)
    actual = ast.dump(ast.parse(converted), include_attributes=False, indent=1)
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "by tree", "by tokens", n=2, lineterm=""
        )
        raise SystemExit(
            f"async_to_sync: converting {source_path} by tokens and by its syntax tree disagree "
            "(a rename or an await in an unusual place?):\n" + "\n".join(list(diff)[:40])
        )
    converted = HEADER.format(source=source_path) + converted
    converted = _run_ruff(["check", "--fix", "--exit-zero", "--select", "I,RUF022"], converted, target_path)
    return _run_ruff(["format"], converted, target_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming each generated module that is stale",
    )
    options = parser.parse_args(argv)
    stale = []
    for source_path, target_path in PAIRS:
        generated = generate(source_path, target_path)
        target = ROOT / target_path
        current = target.read_text() if target.exists() else None
        if current == generated:
            continue
        if options.check:
            stale.append(target_path)
            print(
                f"{target_path} is stale: it is generated from {source_path}; "
                "run .venv/bin/python .ci/async_to_sync.py",
                file=sys.stderr,
            )
        else:
            target.write_text(generated)
            print(f"wrote {target_path} (from {source_path})")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
