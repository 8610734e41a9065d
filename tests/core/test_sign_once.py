"""Signing serialises a record once: the text it returns is exactly ``dumps`` of the signed record,
and the signature covers exactly ``dumps`` of the record without it (what every receiver checks)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prescreen.core.records import dumps, validate
from prescreen.core.signing import DeviceKey, TrustStore
from record_fixtures import record

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> DeviceKey:
    return DeviceKey.load_or_create(tmp_path_factory.mktemp("key") / "device.key")


def test_a_record_signed_once_is_the_record_signed_then_dumped(key: DeviceKey) -> None:
    body = record(7)
    body["parcel"]["barcode"]["raw"] = 'Caf\u00e9 \u2028 "quoted" \\ \u0001'
    twice = key.sign(copy.deepcopy(body))
    text = key.sign_text(body)
    assert text == dumps(body) == dumps(twice)
    validate(body)
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    assert trust.check(body) is None


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(members=st.dictionaries(st.text(max_size=12), _values, max_size=8))
def test_any_json_object_signed_once_matches(key: DeviceKey, members: dict[str, Any]) -> None:
    twice = key.sign(copy.deepcopy(members))
    once = copy.deepcopy(members)
    assert key.sign_text(once) == dumps(twice) == dumps(once)
