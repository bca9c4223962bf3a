"""Hostile inputs, made from a seed, and what docstore must answer to each.

Every one is refused, or handled, with a docstore error that names what is wrong and
never shows a password: a cursor that is not one the feed gave, an export line spoiled
(a ``\\u0000``, a cut line, a wrong type), a DSN holding a password that libpq cannot
parse or reach, a YAML file whose aliases expand past any sane size.
"""

from __future__ import annotations

import json
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from docstore import DocStoreError

SOAK_ONLY = "soak"
"""Marks inputs that meet breaks found by the checker beyond issue 24's ten (see
docs/reliability.md): the soak sends them, the short run does not, until they are fixed."""


@dataclass(frozen=True)
class Refusal:
    """What a hostile call came to: the error it raised (None: it was taken), what it
    returned or how it ended, and how long it took."""

    error: BaseException | None
    detail: str = ""
    seconds: float = 0.0


# --- cursors -------------------------------------------------------------------------

_NOT_ASCII_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def bad_cursor(rng: random.Random) -> tuple[str, str]:
    """A string that is no cursor the feed gave, and why."""
    xid, seq = rng.randrange(700, 5000), rng.randrange(0, 50)
    made: list[tuple[str, str]] = [
        (f"²{xid}.{seq}", "a superscript digit"),
        (f"{xid}.{seq}".translate(_NOT_ASCII_DIGITS), "Arabic-Indic digits"),
        (f"-{xid}.{seq}", "a negative position"),
        (f"+{xid}.{seq}", "a plus sign"),
        (f" {xid}.{seq}", "a leading space"),
        (f"{xid}.{seq}\n", "a trailing newline"),
        (f"{xid}.{seq}\x00", "a NUL"),
        (f"{2**64 + rng.randrange(10**6)}.{seq}", "a transaction id past 64 bits"),
        (f"{xid}.{2**63 + rng.randrange(10**6)}", "a sequence number past 63 bits"),
        (f"{2**40 + rng.randrange(10**9)}.{seq}", "a position far ahead of anything the server issued"),
        ("9" * rng.randrange(100, 3000) + ".0", "a number thousands of digits long"),
        (f"{xid}.{seq}@{xid + 5}:{xid}:", "a snapshot whose xmin is past its xmax"),
        (f"{xid}.{seq}@{xid}:{xid + 5}:{xid + 9}", "a snapshot listing a transaction past its xmax"),
        (f"{xid}.{seq}@{xid}:{xid + 5}", "a snapshot of two parts"),
        (f"{xid}.{seq}@", "an empty snapshot"),
        (f"{xid}", "no sequence number"),
        (f"{xid}.{seq}.{seq}", "three parts"),
        ("", "an empty string"),
    ]
    return made[rng.randrange(len(made))]


def judge_cursor(cursor: str, refusal: Refusal) -> str | None:
    """A bad cursor must be refused as such: a DocStoreError naming it."""
    if refusal.error is None:
        return f"changes(after={_show(cursor)}) took it ({refusal.detail}) instead of refusing it"
    if not isinstance(refusal.error, DocStoreError):
        return f"changes(after={_show(cursor)}) raised {_brief(refusal.error)}, not a docstore error"
    if not names(str(refusal.error), cursor):
        return (
            f"changes(after={_show(cursor)}) raised {_brief(refusal.error)}, which does not name the cursor"
        )
    return None


# --- export lines --------------------------------------------------------------------

Spoil = Callable[[dict[str, Any]], None]

_DATA_SPOILS: dict[str, Spoil] = {
    "a \\u0000 in a string of the data": lambda r: _data(r).update(note="a\u0000b"),
    "a \\u0000 in a key of the data": lambda r: _data(r).update({"k\u0000": 1}),
}
_LINE_SPOILS: dict[str, Spoil] = {
    "a \\u0000 in a timestamp": lambda r: r.update({_time_field(r): str(r[_time_field(r)]) + "\u0000"}),
    "a name of 600 characters": lambda r: r.update(name="n" * 600),
    "a version that is a string": lambda r: r.update(version=str(r["version"])),
    "a version past 64 bits": lambda r: r.update(version=2**70),
    "a schema_version past 32 bits": lambda r: r.update(schema_version=2**40),
}
_SOAK_SPOILS: dict[str, Spoil] = {
    "a timestamp that is no time": lambda r: r.update({_time_field(r): "not a time"}),
}
CUT_LINE = "the line cut in half"


def import_mutations(soak: bool) -> list[str]:
    """The ways an export line is spoiled (the soak adds those meeting open breaks)."""
    names = [*_DATA_SPOILS, *_LINE_SPOILS, CUT_LINE]
    return [*names, *_SOAK_SPOILS] if soak else names


def spoil(lines: list[str], index: int, mutation: str) -> list[str]:
    """``lines`` with line ``index`` spoiled by ``mutation``."""
    out = list(lines)
    if mutation == CUT_LINE:
        out[index] = out[index][: len(out[index]) // 2]
        return out
    record = json.loads(out[index])
    {**_DATA_SPOILS, **_LINE_SPOILS, **_SOAK_SPOILS}[mutation](record)
    out[index] = json.dumps(record)
    return out


@dataclass(frozen=True)
class SpoiledImport:
    """An import whose line ``line`` (1-based) was spoiled; the rows it left."""

    line: int
    refusal: Refusal
    rows_after: int


def judge_import(attempt: SpoiledImport) -> str | None:
    """A spoiled line must be refused naming its line, and nothing written."""
    line, refusal, rows_after = attempt.line, attempt.refusal, attempt.rows_after
    if refusal.error is None:
        return f"the import took spoiled line {line}"
    if rows_after:
        return f"the refused import left {rows_after} rows behind"
    if not isinstance(refusal.error, DocStoreError):
        return f"the import raised {_brief(refusal.error)}, not a docstore error"
    if f"line {line}" not in str(refusal.error):
        return f"the import raised {_brief(refusal.error)}, which does not name line {line}"
    return None


def _data(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record.get("data"), dict):
        record["data"] = {"value": record.get("data")}
    data: dict[str, Any] = record["data"]
    return data


def _time_field(record: dict[str, Any]) -> str:
    return "created_at" if record.get("t") == "document" else "written_at"


# --- DSNs ----------------------------------------------------------------------------

DSN_ENTRIES = ("connect", "read_dsn", "listen_dsn", "watch_listen_dsn")


def bad_dsn(rng: random.Random, port: int, dead_port: int) -> tuple[str, str]:
    """A DSN holding a fresh password that libpq cannot parse, or that reaches no server;
    and the password's random part, which no message may show."""
    secret = f"pw{rng.getrandbits(64):016x}"
    password = secret + rng.choice(["", ":", "@x", "/y", "%", "'"])
    made = [
        f"app:{password}@127.0.0.1:{port}/db",
        f"postgresql://app:{password}%zz@127.0.0.1:{port}/db",
        f"postgresql://app:{password}@127.0.0.1:{port}x/db",
        f"host=127.0.0.1 port={port} user=app password {password}",
        f"host=127.0.0.1 port={port} user=app password='{password}",
        f"host=127.0.0.1 port={port} user=app passwd={password}",
        f"host=127.0.0.1 port={dead_port} user=app password={password} dbname=db connect_timeout=2",
    ]
    return made[rng.randrange(len(made))], secret


def secret_in(error: BaseException | None, texts: list[str], secrets: set[str]) -> str | None:
    """Which secret shows in the error (its text, repr, traceback and causes) or texts."""
    shown = list(texts)
    if error is not None:
        shown += [str(error), repr(error), "".join(traceback.format_exception(error))]
    for secret in secrets:
        if any(secret in text for text in shown):
            return secret
    return None


# --- YAML ----------------------------------------------------------------------------

YAML_ENTRIES = ("sync", "put")
YAML_SMALL = 100
"""Nodes that any bound must allow: a file expanding to at most this many must store."""


def alias_bomb(rng: random.Random, name: str) -> tuple[str, int]:
    """An llm config whose ``extra`` field is a billion-laughs alias tree of random
    width and depth; and how many nodes it expands to."""
    width, depth = rng.randint(2, 9), rng.randint(1, 9)
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
    lines += ["type: llm", f"name: {name}", "provider: anthropic", "model: m1", f"extra: *a{depth - 1}"]
    return "\n".join(lines) + "\n", width**depth


def judge_yaml(nodes: int, refusal: Refusal) -> str | None:
    """The command ends in time, without a traceback; a small file is stored."""
    if refusal.error is not None:
        return f"the command did not end within {refusal.seconds:.0f} s ({_brief(refusal.error)})"
    code, _, stderr = refusal.detail.partition("\n")
    if "Traceback" in stderr or code not in ("0", "1"):
        return f"the command ended with status {code} and {_short(stderr)!r}"
    if nodes <= YAML_SMALL and code != "0":
        return f"a file expanding to {nodes} nodes was refused: {_short(stderr)!r}"
    return None


# --- helpers -------------------------------------------------------------------------


def names(message: str, text: str) -> bool:
    """Whether ``message`` shows ``text`` (its start, as written or as Python's repr)."""
    if not text:
        return "''" in message or '""' in message
    head = text[:16]
    return (head.strip() != "" and head in message) or repr(head)[:-1] in message


def _show(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + f"...({len(text)} chars)"


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_short(str(exc))}"


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
