"""``dumps`` and ``member_texts`` keep one JSON encoder instead of building one per call (issue 20):
their text must stay exactly what ``json.dumps`` with the same options writes, for any JSON value,
the ones records never hold included (NaN, huge integers, lone surrogates, control characters)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prescreen.core.records import dumps, join_members, member_texts

_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=10)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**70) | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=16,
)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(members=st.dictionaries(_text, _values, max_size=8))
def test_dumps_and_member_texts_write_what_json_dumps_writes(members: dict[str, Any]) -> None:
    assert dumps(members) == _json_dumps(members)
    texts = member_texts(members)
    assert texts == {k: f"{json.dumps(k, ensure_ascii=False)}:{_json_dumps(v)}" for k, v in members.items()}
    assert join_members(texts) == _json_dumps(members)
