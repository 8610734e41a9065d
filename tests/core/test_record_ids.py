"""Record ids: time-ordered UUIDs (version 7), so the indexes keyed by them grow at their end."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from prescreen.core import records
from prescreen.core.records import new_record_id, schema


def test_a_record_id_is_a_version_7_uuid_carrying_the_time_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid.UUID(new_record_id())
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after  # the top 48 bits: Unix milliseconds


def test_record_ids_made_later_sort_after_and_never_repeat() -> None:
    first = [new_record_id() for _ in range(2000)]
    time.sleep(0.002)
    later = [new_record_id() for _ in range(2000)]
    assert len(set(first + later)) == 4000
    assert max(first) < min(later)  # text order is time order across milliseconds


def test_the_random_part_differs_within_one_millisecond() -> None:
    ids = [uuid.UUID(new_record_id()).int & (1 << 74) - 1 for _ in range(1000)]
    assert len(set(ids)) == 1000


def test_record_ids_match_the_published_schema() -> None:
    pattern = re.compile(schema()["properties"]["record_id"]["pattern"])
    assert all(pattern.match(new_record_id()) for _ in range(100))


def test_the_fallback_lays_out_what_the_standard_library_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.14's uuid.uuid7 is used where it exists; before it, the hand-made layout."""
    monkeypatch.delattr(uuid, "uuid7", raising=False)
    before = time.time_ns() // 1_000_000
    made = records._uuid7()
    assert (made.version, made.variant) == (7, uuid.RFC_4122)
    assert before <= made.int >> 80 <= time.time_ns() // 1_000_000
