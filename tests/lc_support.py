"""What the LangGraph and LangChain tests share: a deterministic embedding model and an
embedded server that has pgvector."""

from __future__ import annotations

import math
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langchain_core.embeddings import Embeddings

from docstore.cli import embedded


class LetterEmbeddings(Embeddings):
    """Texts as the normalised sum of a fixed random direction per character: texts
    sharing letters are near, as with LangGraph's own test embeddings. No network."""

    def __init__(self, dims: int = 64) -> None:
        self.dims = dims
        self._directions: dict[str, list[float]] = {}

    def _direction(self, char: str) -> list[float]:
        if char not in self._directions:
            rng = random.Random(f"{char}:{self.dims}")
            self._directions[char] = [rng.gauss(0, 1) for _ in range(self.dims)]
        return self._directions[char]

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dims
        for char, count in Counter(text).items():
            for i, x in enumerate(self._direction(char)):
                vector[i] += count * x
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector] if norm else vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


@contextmanager
def pgvector_server() -> Iterator[str]:
    """A throwaway embedded PostgreSQL (pgserver's, which ships pgvector); its DSN."""
    import pgserver

    # Not under pytest's tmp_path: a pytest session starting meanwhile resets
    # /tmp/pytest-of-<user> to 0700, out of reach of the `pgserver` user the server runs
    # as when the tests run as root (tests/test_embedded.py says the same).
    root = Path(tempfile.mkdtemp(prefix="docstore-pgvector-"))
    pgdata = root / "pgdata"
    try:
        dsn = embedded.start(pgdata)
        yield dsn
    finally:
        if (pgdata / "PG_VERSION").exists():
            server = pgserver.get_server(pgdata, cleanup_mode="delete")  # type: ignore[attr-defined]
            server.cleanup_mode = "delete"
            server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
