"""Hostile and odd input: stored and read back exactly, or refused with a clear error
that names the problem, and nothing half-written."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import AsyncFactory, acount_rows
from pydantic import BaseModel

from docstore import AsyncDocStore, DocStoreError, DocumentInvalid, InvalidKey
from docstore._codec import MAX_DEPTH
from docstore.errors import InvalidFilter

AnyDoc = dict[str, Any]


class Msg(BaseModel):
    role: str
    content: str


class Reading(BaseModel):
    value: float


@pytest.fixture
async def astore(adocstore_factory: AsyncFactory) -> AsyncDocStore:
    """A fresh store of this module's shell."""
    return await adocstore_factory()


@pytest.fixture
def s(astore: AsyncDocStore) -> AsyncDocStore:
    astore.register("doc", AnyDoc)
    astore.register("chat", Msg, mode="log")
    astore.register("reading", Reading)
    return astore


async def _nothing_stored(s: AsyncDocStore) -> None:
    for kind in ("doc", "chat", "reading"):
        assert await acount_rows(s, "documents", kind) == 0
        assert await acount_rows(s, "versions", kind) == 0


# --- what JSONB cannot hold --------------------------------------------------------------

UNSTORABLE = [
    pytest.param({"a": {"b": ["ok", "x\x00y"]}}, "a.b.1", "\\u0000", id="nul-in-value"),
    pytest.param({"a": {"k\x00": 1}}, "a.k\\x00", "\\u0000", id="nul-in-key"),
    pytest.param({"n": [1.0, float("nan")]}, "n.1", "NaN", id="nan"),
    pytest.param({"n": {"m": float("inf")}}, "n.m", "Infinity", id="infinity"),
    pytest.param({"n": float("-inf")}, "n", "Infinity", id="minus-infinity"),
    pytest.param({"t": "a\ud800b"}, "t", "lone surrogate", id="lone-surrogate-value"),
    pytest.param({"\udc00": 1}, "\\udc00", "lone surrogate", id="lone-surrogate-key"),
    pytest.param({"o": {"\ud83dx": [1]}}, "o.\\ud83dx", "lone surrogate", id="lone-surrogate-nested-key"),
]


@pytest.mark.parametrize(("value", "path", "problem"), UNSTORABLE)
async def test_unstorable_json_is_refused_naming_the_path_and_nothing_is_written(
    s: AsyncDocStore, value: Any, path: str, problem: str
) -> None:
    with pytest.raises(DocumentInvalid) as err:
        await s.put("doc", "d", value)
    message = str(err.value)
    assert path in message and problem in message, message
    message.encode("utf-8")  # the message itself is printable and loggable
    with pytest.raises(DocumentInvalid, match="doc 'bad' is invalid"):
        await s.put_many("doc", {"ok": {"a": 1}, "bad": value})
    with pytest.raises(DocumentInvalid) as err:
        await s.append(
            "chat",
            "c",
            [
                {"role": "user", "content": "fine"},
                {"role": "user", "content": "x\x00" if "\\u0000" in problem else "a\ud800b"},
            ],
        )
    assert err.value.errors[0]["loc"][0] == 1  # which item of the batch
    await _nothing_stored(s)


async def test_nan_in_a_float_field_of_a_model_is_refused_not_written_as_null(s: AsyncDocStore) -> None:
    with pytest.raises(DocumentInvalid, match="value: is nan"):
        await s.put("reading", "r", Reading(value=float("nan")))
    await _nothing_stored(s)


async def test_strings_jsonb_can_hold_round_trip_exactly(s: AsyncDocStore) -> None:
    value = {
        "escapes": "\\u0000 is not a NUL, \\\\ and \" and '",
        "control": "".join(chr(c) for c in range(1, 32)) + "\x7f",
        "unicode": "emoji 😀🏳️‍🌈, RTL שלום مرحبا \u202e reversed \u202c, CJK 漢字, BOM \ufeff",
        "nonchars": "\ufffe\uffff\U0010ffff",
        "replacement char": "\ufffd",  # legal, unlike a lone surrogate
        "keys": {"": 1, "a.b": 2, "$x": 3, "'\"\\": 4, "😀": 5, " ": 6},
        "null-ish": ["null", None, "NULL", "\\u0000"],
    }
    await s.put("doc", "strings", value)
    assert (await s.get("doc", "strings")).data == value
    assert (await s.versions("doc", "strings"))[0].data == value


async def test_numbers_round_trip_by_value_and_typed_float_fields_keep_their_type(s: AsyncDocStore) -> None:
    value = {"int": 2**70, "neg": -(2**63), "f": 0.1, "tiny": 5e-324, "small": -1.5e-10}
    await s.put("doc", "n", value)
    assert (await s.get("doc", "n")).data == value
    # JSONB stores numbers as numeric and prints them without exponent: an untyped float
    # like 1e308 reads back as a 309-digit int (docs/reliability.md). A float field of a
    # model reads it back as the same float.
    await s.put("doc", "big", {"max": 1.7976931348623157e308, "e": 1e16})
    got = (await s.get("doc", "big")).data
    assert isinstance(got["max"], int) and float(got["max"]) == 1.7976931348623157e308
    assert got["e"] == 10**16
    for number in (1.7976931348623157e308, 1e16, 0.1, -0.0, 5e-324):
        await s.put("reading", "r", Reading(value=number))
        read = (await s.get("reading", "r")).data
        assert isinstance(read.value, float) and read.value == number


def _nest(depth: int) -> Any:
    """``depth`` levels of containers in all: objects and arrays, alternating."""
    value: Any = "leaf"
    for level in range(depth - 1):
        value = {"a": value} if level % 2 else [value]
    return {"root": value}


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH])
async def test_nesting_up_to_the_limit_round_trips(s: AsyncDocStore, depth: int) -> None:
    await s.put("doc", "deep", _nest(depth))
    assert (await s.get("doc", "deep")).data == _nest(depth)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 254, 255, 1000, 10_000])
async def test_nesting_beyond_the_limit_is_refused_with_a_clear_error(s: AsyncDocStore, depth: int) -> None:
    # 201..254 levels: PostgreSQL would store it but Pydantic could not read it back,
    # so it is refused up front instead of becoming an unreadable document.
    with pytest.raises(DocumentInvalid, match=f"more than {MAX_DEPTH} levels deep"):
        await s.put("doc", "deep", _nest(depth))
    with pytest.raises(DocumentInvalid, match=f"more than {MAX_DEPTH} levels deep"):
        await s.put_many("doc", {"fine": {"a": 1}, "deep": _nest(depth)})
    await _nothing_stored(s)


async def test_many_brackets_that_are_not_deep_still_round_trip(s: AsyncDocStore) -> None:
    value = {"rows": [[i, {"j": [i]}] for i in range(2000)]}
    await s.put("doc", "wide", value)
    assert (await s.get("doc", "wide")).data == value


# --- kinds and names ---------------------------------------------------------------------

ODD_NAMES = [
    "quote'single",
    'quote"double',
    "percent%",
    "under_score",
    "a_c",
    "slash/es/",
    "back\\slash",
    "new\nline",
    "tab\there",
    "emoji 😀🏳️‍🌈",
    "RTL שלום \u202e",
    "' OR '1'='1",
    "'; DROP TABLE x; --",
    "$1",
    "%(name)s",
    "{s}",
    ':"schema"',
    " ",
    "..",
    "x" * 512,
    "😀" * 512,
]


@pytest.mark.parametrize("name", ODD_NAMES, ids=lambda n: repr(n)[:30])
async def test_odd_names_round_trip_through_every_operation(s: AsyncDocStore, name: str) -> None:
    await s.put("doc", name, {"v": 1})
    await s.put("doc", name, {"v": 2})
    assert (await s.get("doc", name)).data == {"v": 2}
    assert (await s.get("doc", name, version=1)).data == {"v": 1}
    assert [d.version for d in await s.versions("doc", name)] == [1, 2]
    assert list(await s.get_many("doc", [name, "other"])) == [name]
    assert [d.name for d in await s.list("doc")] == [name]
    assert (await s.revert("doc", name, to_version=1)).version == 3
    assert (await s.put_many("doc", {name: {"v": 4}}))[0].version == 4
    assert await s.delete("doc", name) == 5
    assert await s.append("chat", name, [{"role": "user", "content": name}]) == 1
    assert (await s.read("chat", name))[0].content == name
    assert await acount_rows(s, "documents", "doc") == 1 and await acount_rows(s, "versions", "doc") == 5


async def test_like_wildcards_in_names_match_only_themselves(s: AsyncDocStore) -> None:
    for name in ("a_c", "abc", "a%", "abcd", "A_C"):
        await s.put("doc", name, {"n": name})
    assert (await s.get("doc", "a_c")).data == {"n": "a_c"}
    assert (await s.get("doc", "a%")).data == {"n": "a%"}
    assert set(await s.get_many("doc", ["a_c", "a%"])) == {"a_c", "a%"}
    assert await s.delete("doc", "a_c") == 2
    assert (await s.get("doc", "abc")).version == 1 and (await s.get("doc", "A_C")).version == 1


BAD_NAMES = [
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("x" * 513, "at most 512", id="513"),
    pytest.param("x" * 10_000, "at most 512", id="10000"),
    pytest.param("a\x00b", "\\u0000", id="nul"),
    pytest.param("a\ud800", "lone surrogate", id="surrogate"),
]


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
async def test_names_the_store_cannot_hold_are_refused_before_any_sql(
    s: AsyncDocStore, name: str, problem: str
) -> None:
    with pytest.raises(InvalidKey) as put:
        await s.put("doc", name, {"v": 1})
    with pytest.raises(InvalidKey) as get:
        await s.get("doc", name)
    with pytest.raises(InvalidKey) as put_many:
        await s.put_many("doc", {"fine": {"v": 1}, name: {"v": 1}})
    with pytest.raises(InvalidKey) as append:
        await s.append("chat", name, [{"role": "u", "content": "c"}])
    with pytest.raises(InvalidKey) as delete:
        await s.delete("doc", name)
    for err in (put, get, put_many, append, delete):
        assert problem in str(err.value)
        assert len(str(err.value)) < 300  # a 10,000-character name does not flood logs
        str(err.value).encode("utf-8")
    await _nothing_stored(s)


BAD_KINDS = [
    "",
    "x" * 64,
    "k" * 10_000,
    "Agent",
    "a-b",
    "a b",
    "a'b",
    'a"b',
    "a;b",
    "agent; DROP TABLE documents",
    "a%",
    "a/b",
    "a\\b",
    "a\nb",
    "😀",
    "שלום",
    "_x",
    "1abc",
]


@pytest.mark.parametrize("kind", BAD_KINDS, ids=lambda k: repr(k)[:30])
async def test_kinds_outside_the_allowed_alphabet_are_refused_clearly(s: AsyncDocStore, kind: str) -> None:
    with pytest.raises(InvalidKey, match="a kind is 1 to 63 characters"):
        s.register(kind, AnyDoc)
    with pytest.raises(DocStoreError):  # unregistered, or invalid: never SQL
        await s.put(kind, "n", {"v": 1})
    assert await acount_rows(s, "documents", kind) == 0


# --- injection ---------------------------------------------------------------------------

INJECTIONS = [
    "' OR 1=1 --",
    "') OR true --",
    '" || true || "',
    "' || true || '",
    "$",
    "@",
    "*",
    "**",
    "$.*",
    "@ == @",
    ") ? (@ == @",
    'a"b',
    "a'b",
    "a\\b",
    'a\\"b',
    "last",
    "$v",
    'like_regex ".*"',
    "%(w_0)s",
    "%s",
    "{s}",
    "\n",
    "😀",
    "שלום",
]


@pytest.fixture
async def docs(s: AsyncDocStore) -> AsyncDocStore:
    """One document per injection string under that literal key, and innocent ones (in one
    write: the tests read them, and each test paid 27 commits)."""
    evil = {f"evil-{i}": {evil: 5, "s": evil} for i, evil in enumerate(INJECTIONS)}
    await s.put_many("doc", {"innocent": {"a": 1, "n": 5, "s": "text"}, "other": {"b": {"c": 2}}, **evil})
    return s


async def _names(s: AsyncDocStore, where: Any) -> list[str]:
    return [d.name for d in await s.list("doc", where=where)]


@pytest.mark.parametrize("i", range(len(INJECTIONS)), ids=lambda i: repr(INJECTIONS[i])[:30])
async def test_injection_in_where_keys_matches_only_that_literal_key(docs: AsyncDocStore, i: int) -> None:
    evil = INJECTIONS[i]
    key = (evil,)  # a tuple path: the key taken literally, even with dots or "$"
    assert await _names(docs, {key: 5}) == [f"evil-{i}"]
    assert await _names(docs, {key: {"$gt": 4}}) == [f"evil-{i}"]
    assert await _names(docs, {key: {"$gte": 5, "$lt": 6}}) == [f"evil-{i}"]
    assert await _names(docs, {key: {"$exists": True}}) == [f"evil-{i}"]
    assert await _names(docs, {key: {"$in": [5, 6]}}) == [f"evil-{i}"]
    assert await _names(docs, {key: {"$ne": 5}}) == sorted(n for n in await _all(docs) if n != f"evil-{i}")
    assert await _names(docs, {key: {"$gt": 5}}) == []


@pytest.mark.parametrize("i", range(len(INJECTIONS)), ids=lambda i: repr(INJECTIONS[i])[:30])
async def test_injection_in_where_values_matches_only_that_literal_value(docs: AsyncDocStore, i: int) -> None:
    evil = INJECTIONS[i]
    assert await _names(docs, {"s": evil}) == [f"evil-{i}"]
    assert await _names(docs, {"s": {"$in": [evil, "nothing"]}}) == [f"evil-{i}"]
    assert await _names(docs, {"s": {"$gte": evil, "$lte": evil}}) == [f"evil-{i}"]
    assert await _names(docs, {"n": {"$gt": evil}}) == []  # a string never matches a number


async def _all(s: AsyncDocStore) -> list[str]:
    return sorted(d.name for d in await s.list("doc"))


async def test_raw_jsonpath_is_a_parameter_so_sql_in_it_is_only_a_jsonpath_syntax_error(
    docs: AsyncDocStore,
) -> None:
    for text in ("$.a) ; DROP TABLE documents; --", "'; DROP TABLE documents; --", "$.a') OR true --"):
        with pytest.raises(DocStoreError):
            await _names(docs, {"$jsonpath": text})
    assert len(await _all(docs)) == len(INJECTIONS) + 2
    assert await _names(docs, {"$jsonpath": "$.n == 5"}) == ["innocent"]


async def test_unknown_operators_and_non_dict_filters_are_refused_before_any_sql(docs: AsyncDocStore) -> None:
    for where in ({"$where": "1=1"}, {"s": {"$regex": ".*"}}, {"s": {"$gt": float("nan")}}, {"s": "a\x00"}):
        with pytest.raises(InvalidFilter):
            await _names(docs, where)
    with pytest.raises((InvalidFilter, TypeError)):
        await _names(docs, "1=1")
