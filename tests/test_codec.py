"""docstore._codec: orjson writes the documents of plain kinds (``dict``, ``dict[str, Any]``,
``list``, ``Any``) byte for byte as Pydantic does, and leaves Pydantic every value it
cannot write the same way; so what is stored, and what is refused and why, does not
depend on which of the two wrote it."""

from __future__ import annotations

import collections
import dataclasses
import enum
import math
import random
import struct
from typing import Any

import hypothesis.strategies as st
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from docstore._codec import JsonProblem, dump, writes_plain

PLAIN: list[TypeAdapter[Any]] = [
    TypeAdapter(dict),
    TypeAdapter(dict[str, Any]),
    TypeAdapter(list),
    TypeAdapter(Any),
]


class Color(enum.Enum):
    RED = 1
    BLUE = "b"
    HALF = 1.5
    PAIR = (1, 2)
    NONE = None


class Letter(enum.StrEnum):
    A = "a"
    LONE = "\ud800"


class Count(enum.IntEnum):
    ONE = 1
    HUGE = 2**70


class Text(str):
    pass


class Number(int):
    pass


class Real(float):
    pass


class Mapping(dict[Any, Any]):
    pass


class Items(list[Any]):
    pass


Pair = collections.namedtuple("Pair", "a b")


@dataclasses.dataclass
class Record:
    a: Any = 1


class Model(BaseModel):
    a: Any = 1


# Every kind of value a plain document may hold: JSON's own, what Pydantic writes by its
# type (enums, UUIDs, times, decimals, bytes, sets, named tuples, dataclasses, models,
# subclasses), and what neither or only one can write (NaN, lone surrogates, integers
# past 64 bits, keys that are no strings).
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.floats(width=32),
    st.text(),
    st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF)),
    st.sampled_from([*Color, *Letter, *Count]),
    st.uuids(),
    st.datetimes(),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.decimals(allow_nan=True),
    st.binary(max_size=5),
    st.builds(Text, st.text(max_size=5)),
    st.builds(Number, st.integers()),
    st.builds(Real, st.floats()),
    st.just(Record()),
    st.just(Model()),
    st.just(-0.0),
)
_KEYS = st.one_of(
    st.text(),
    st.integers(),
    st.builds(Text, st.text(max_size=5)),
    st.sampled_from(list(Letter)),
    st.booleans(),
    st.none(),
    st.floats(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(_KEYS, inner, max_size=4),
        st.builds(Pair, inner, inner),
        st.builds(Mapping, st.dictionaries(st.text(), inner, max_size=3)),
        st.builds(Items, st.lists(inner, max_size=3)),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=20,
)


def _same(adapter: TypeAdapter[Any], value: Any) -> None:
    try:
        value = adapter.validate_python(value)  # what a write dumps: the validated value
    except ValidationError:
        return
    by_orjson = dump(adapter, value, plain=True)
    by_pydantic = dump(adapter, value, plain=False)
    assert by_orjson == by_pydantic, value


@pytest.mark.slow
@settings(max_examples=3000, suppress_health_check=list(HealthCheck), deadline=None)
@given(st.dictionaries(st.text(), _VALUES, max_size=5))
def test_a_dict_is_written_as_pydantic_writes_it(value: dict[str, Any]) -> None:
    for adapter in PLAIN:
        _same(adapter, value)


@pytest.mark.slow
@settings(max_examples=2000, suppress_health_check=list(HealthCheck), deadline=None)
@given(_VALUES)
def test_any_value_is_written_as_pydantic_writes_it(value: Any) -> None:
    _same(TypeAdapter(Any), value)
    _same(TypeAdapter(list), [value])


def test_floats_and_integers_are_written_alike() -> None:
    # Shortest round-trip digits, exponents, subnormals, -0.0: 200,000 doubles from
    # random bit patterns and decimal scales, and 64-bit integers at both ends.
    rng = random.Random(26)
    floats = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(100_000)]
    floats += [rng.random() * 10 ** rng.randint(-30, 30) for _ in range(100_000)]
    ints = [rng.randint(-(2**63), 2**64 - 1) for _ in range(10_000)] + [-(2**63), 2**64 - 1, 0]
    for adapter in (TypeAdapter(list), TypeAdapter(Any)):
        _same(adapter, floats)
        _same(adapter, ints)


@pytest.mark.parametrize(
    "value",
    [
        {"nul": "a\x00b"},
        {"nan": [1.0, math.nan]},
        {"inf": {"x": -math.inf}},
        {"lone": "\ud800"},
        {"\ud800": 1},
        {"big": 2**64},
        {1: "int key"},
        {"deep": [[[[[[]]]]]] * 3},
        {"control": "\x1f\x7f\u2028", "quote": '"\\/'},
    ],
)
def test_what_is_refused_is_refused_alike(value: Any) -> None:
    for adapter in PLAIN[:2]:
        _same(adapter, value)
    problem = dump(TypeAdapter(dict), {"nul": "a\x00b"}, plain=True)
    assert isinstance(problem, JsonProblem) and problem.path == "nul"


def test_too_deep_is_refused_alike() -> None:
    for depth in (200, 201, 254, 255, 400):
        value: Any = 1
        for _ in range(depth):
            value = [value]
        _same(TypeAdapter(Any), value)
        _same(TypeAdapter(dict), {"x": value})


def test_which_kinds_are_plain() -> None:
    class Config(BaseModel):
        name: str

    assert all(writes_plain(adapter) for adapter in PLAIN)
    assert not writes_plain(TypeAdapter(Config))
    assert not writes_plain(TypeAdapter(dict[str, int]))
    assert not writes_plain(TypeAdapter(list[str]))
    # A config that changes how Pydantic writes what orjson writes too: Pydantic's.
    assert not writes_plain(TypeAdapter(dict, config=ConfigDict(ser_json_inf_nan="constants")))


def test_an_orjson_fragment_is_the_one_difference() -> None:
    # orjson writes its own pre-serialised JSON as it is, where Pydantic refuses it.
    fragment = {"raw": orjson.Fragment(b"[1,2]")}
    assert dump(TypeAdapter(dict), fragment, plain=True) == b'{"raw":[1,2]}'
    assert isinstance(dump(TypeAdapter(dict), fragment, plain=False), JsonProblem)
