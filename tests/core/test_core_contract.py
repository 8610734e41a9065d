"""The shared contract's own helpers: durable SQLite, time parsing and the one signature verifier."""

from __future__ import annotations

import base64
import sqlite3
from datetime import timezone
from pathlib import Path

import pytest
from prescreen.core.db import chunked, connect_durable, immediate, marks
from prescreen.core.records import dumps, epoch_s, parse_time
from prescreen.core.signing import DeviceKey, verify_detached


def test_a_durable_file_is_wal_with_full_sync_and_private(tmp_path: Path) -> None:
    conn = connect_durable(tmp_path / "x.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert (tmp_path / "x.db").stat().st_mode & 0o077 == 0
    cache = connect_durable(tmp_path / "cache.db", synchronous="NORMAL")
    assert cache.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_a_failed_transaction_leaves_nothing_and_the_error_propagates(tmp_path: Path) -> None:
    conn = connect_durable(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    with immediate(conn) as cur:
        cur.execute("INSERT INTO t VALUES (1)")

    def second_insert_fails() -> None:
        with immediate(conn) as cur:
            cur.execute("INSERT INTO t VALUES (2)")
            cur.execute("INSERT INTO t VALUES (1)")  # duplicate key: the whole transaction goes

    with pytest.raises(sqlite3.IntegrityError):
        second_insert_fails()
    assert [r[0] for r in conn.execute("SELECT k FROM t")] == [1]
    assert not conn.in_transaction


def test_in_lists_are_split_under_the_parameter_cap(tmp_path: Path) -> None:
    conn = connect_durable(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2_000)])
    wanted = [*range(0, 2_000, 2), 5_000]
    found = 0
    for chunk in chunked(wanted, 300):
        assert len(chunk) <= 300
        found += conn.execute(f"SELECT COUNT(*) FROM t WHERE k IN ({marks(len(chunk))})", chunk).fetchone()[0]
    assert found == 1_000
    assert sum(len(c) for c in chunked(wanted, 300)) == len(wanted)


def test_rfc3339_with_z_an_offset_or_no_zone() -> None:
    assert parse_time("2026-06-24T00:00:00Z").tzinfo is not None
    assert epoch_s("2026-06-24T02:00:00+02:00") == epoch_s("2026-06-24T00:00:00Z")
    assert parse_time("2026-06-24T00:00:00").tzinfo == timezone.utc
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_time("24 June 2026")


def test_the_one_verifier_refuses_tampered_and_malformed_signatures(tmp_path: Path) -> None:
    key = DeviceKey.load_or_create(tmp_path / "k")
    data = dumps({"a": 1, "b": "ü"}).encode()
    signature = key.sign_bytes(data)
    assert verify_detached(key.public, data, signature)
    assert not verify_detached(key.public, data + b" ", signature)
    assert not verify_detached(key.public, data, "not base64 !!")
    assert not verify_detached(key.public, data, base64.b64encode(b"short").decode())
    other = DeviceKey.load_or_create(tmp_path / "other")
    assert not verify_detached(other.public, data, signature)


def test_canonical_json_is_compact_sorted_and_keeps_unicode() -> None:
    assert dumps({"b": 1, "a": "ü"}) == '{"a":"ü","b":1}'
