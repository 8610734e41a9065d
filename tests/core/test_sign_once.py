"""Signing serialises a record once: the text it returns is exactly ``dumps`` of the signed record,
and the signature covers exactly ``dumps`` of the record without it (what every receiver checks)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prescreen.core.records import dumps, member_texts, validate
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


def test_members_serialised_elsewhere_are_signed_as_the_record_with_them(key: DeviceKey) -> None:
    """A replay's workers serialise parcel, order and screening; the writer signs the envelope with
    them: the text and the signature are those of the whole record, and its own values lose."""
    whole = record(9)
    whole["parcel"]["barcode"]["raw"] = "Caf\u00e9 \u2028"
    known = member_texts({k: whole[k] for k in ("parcel", "order", "screening")})
    envelope_only = {k: v for k, v in whole.items() if k not in known}
    envelope_only["parcel"] = {"stale": True}  # the known text wins over a value the record has
    text = key.sign_text(envelope_only, known)
    assert text == key.sign_text(copy.deepcopy(whole))  # Ed25519 signs the same bytes alike
    assert TrustStore([key.trust_entry("site-a", "dev-1")]).check(json.loads(text)) is None
    assert dumps(json.loads(text)) == text
