"""Canonical JSON (:mod:`prescreen.core.canonical`, behind ``dumps`` and ``member_texts``) must be
exactly what ``json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)``
writes, for any value: records are signed over it, and every station and receiver of any version
must write the same bytes. msgspec writes what it can; these tests hold it to the standard library
on generated values, every code point, floats of every magnitude and the values it must not write."""

from __future__ import annotations

import collections
import decimal
import enum
import json
import math
import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prescreen.core import canonical
from prescreen.core.records import dumps, join_members, member_texts

_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=10)  # surrogates too
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62) | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=16,
)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@settings(max_examples=500, deadline=None)
@given(members=st.dictionaries(_text, _values, max_size=8))
def test_dumps_and_member_texts_write_what_json_dumps_writes(members: dict[str, Any]) -> None:
    assert dumps(members) == _json_dumps(members)
    texts = member_texts(members)
    assert texts == {k: f"{json.dumps(k, ensure_ascii=False)}:{_json_dumps(v)}" for k, v in members.items()}
    assert join_members(texts) == _json_dumps(members)


def test_floats_of_every_magnitude() -> None:
    rng = random.Random(3)
    floats = [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, 0.1, 0.2 + 0.1, 1.0, 2.5, 1e15, 1e22]
    for edge in (1e-4, 1e16):
        below, above = math.nextafter(edge, 0.0), math.nextafter(edge, math.inf)
        floats += [edge, below, above, -edge, -below, -above]
    for exponent in range(-323, 308):
        floats += [float(f"{rng.uniform(1, 10)!r}e{exponent}") for _ in range(20)]
    floats += [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(20000)]
    floats += [round(rng.uniform(-1e6, 1e6), rng.randint(0, 6)) for _ in range(20000)]
    floats += [math.nan, math.inf, -math.inf]
    assert dumps({"f": floats}) == _json_dumps({"f": floats})
    for value in floats:  # one by one as well: a difference names its float
        assert canonical.dumps(value) == _json_dumps(value), repr(value)


def test_every_code_point_in_strings_and_keys() -> None:
    text = "".join(chr(c) for c in range(0xD800)) + "".join(chr(c) for c in range(0xE000, 0x110000))
    assert dumps({"s": text}) == _json_dumps({"s": text})
    keys = {chr(c): c for c in range(0, 0x110000, 97) if not 0xD800 <= c < 0xE000}
    assert dumps(keys) == _json_dumps(keys)  # sorted by code point, as Python sorts them
    lone = {"s": "a\ud800b", "\udfff": 1}
    assert dumps(lone) == _json_dumps(lone)


class _Colour(enum.IntEnum):
    RED = 1


class _Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"n": [2**63, 2**64 - 1, 2**64, -(2**64), -(2**64) + 1, 10**30]},
        collections.OrderedDict([("b", 1), ("a", 2)]),
        {"t": (1, "x", None, True, (2.5, []))},
        {1: "int keys", 2: "sorted as numbers"},
        {"enum": _Colour.RED, "subclass": _Text("x"), "bool": False},
        {"deep": json.loads("[" * 40 + "]" * 40)},
        {"empty": {}, "list": [], "nothing": None},
    ],
    ids=["ints", "ordered-dict", "tuples", "int-keys", "subclasses", "deep", "empty"],
)
def test_values_msgspec_must_not_write_are_written_as_before(value: Any) -> None:
    assert dumps(value) == _json_dumps(value)


@pytest.mark.parametrize(
    "value",
    [{"d": decimal.Decimal("1.5")}, {"s": {1, 2}}, {"b": b"x"}, {1: "a", "b": 2}, {"i": 10**5000}],
    ids=["decimal", "set", "bytes", "mixed-keys", "too-many-digits"],
)
def test_what_the_standard_library_refuses_is_refused(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as expected:
        _json_dumps(value)
    with pytest.raises(type(expected.value)):
        dumps(value)


def test_a_cycle_is_refused_as_before() -> None:
    looped: dict[str, Any] = {"a": []}
    looped["a"].append(looped)
    with pytest.raises(ValueError, match="Circular"):
        dumps(looped)
