"""Record ids: time-ordered UUIDs (version 7), so the indexes keyed by them grow at their end."""

from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict

from prescreen.core.records import new_record_id, schema

# RFC 9562's random bits of a version 7 UUID: rand_a (12 bits above the variant) and rand_b (62)
RANDOM_BITS = ((1 << 12) - 1) << 64 | (1 << 62) - 1


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


def test_ids_made_in_one_millisecond_differ_in_their_random_bits() -> None:
    by_millisecond: dict[int, set[int]] = defaultdict(set)
    for _ in range(1000):
        value = uuid.UUID(new_record_id()).int
        by_millisecond[value >> 80].add(value & RANDOM_BITS)
    shared = [bits for bits in by_millisecond.values() if len(bits) > 1]
    assert shared  # 1,000 ids take far less than 1,000 ms: several share a millisecond
    assert sum(len(bits) for bits in by_millisecond.values()) == 1000  # none repeated within one


def test_record_ids_match_the_published_schema() -> None:
    pattern = re.compile(schema()["properties"]["record_id"]["pattern"])
    assert all(pattern.match(new_record_id()) for _ in range(100))
