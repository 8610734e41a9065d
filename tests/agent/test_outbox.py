"""The outbox on a real SQLite file with the production durability settings."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from prescreen.core.errors import OutboxError
from prescreen.core.records import SCHEMA_ID, SCHEMA_V1, envelope, validate
from prescreen.ops.config import StationConfig
from prescreen.packing.outbox import Outbox


def add(outbox: Outbox) -> dict:
    return outbox.append(lambda seq: envelope("verdict", seq, StationConfig("d1", "s1", "X")))


def test_wal_full_sync_and_sequence_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    assert [add(outbox)["seq"] for _ in range(3)] == [1, 2, 3]
    conn = outbox.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -512  # KiB: not SQLite's 2 MB (issue 20)
    outbox.close()
    reopened = Outbox(path)
    assert add(reopened)["seq"] == 4
    assert reopened.counts() == {"pending": 4}


def test_only_an_ack_moves_a_record_out_of_pending(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    records = [add(outbox) for _ in range(5)]
    assert [r[0] for r in outbox.pending(10)] == [1, 2, 3, 4, 5]
    assert [r[0] for r in outbox.pending(10, after_seq=3)] == [4, 5]
    assert outbox.mark_acked([records[0]["record_id"], records[2]["record_id"], "unknown-id"]) == 2
    assert outbox.mark_acked([records[0]["record_id"]]) == 0  # a duplicate ack changes nothing
    assert [r[0] for r in outbox.pending(10)] == [2, 4, 5]
    assert outbox.counts() == {"pending": 3, "acked": 2}
    # acks are written without an fsync of their own; record commits stay synchronous=FULL
    assert outbox.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_record_committed_is_on_disk_for_another_process(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    record = add(outbox)
    other = sqlite3.connect(path)  # as a process started after a crash would see it
    assert other.execute("SELECT record_id FROM records").fetchall() == [(record["record_id"],)]


def test_a_failed_write_raises_and_reuses_the_sequence_number(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    add(outbox)
    outbox.db.conn.execute("PRAGMA query_only = ON")  # the file refuses writes, like a full disk
    with pytest.raises(OutboxError, match="record not committed"):
        add(outbox)
    outbox.db.conn.execute("PRAGMA query_only = OFF")
    assert add(outbox)["seq"] == 2


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(OutboxError, match="cannot open outbox"):
        Outbox(path)


def test_a_group_commit_is_all_or_nothing(tmp_path: Path) -> None:
    """append_many: a builder failing half-way commits none of the batch and reuses the seqs."""
    outbox = Outbox(tmp_path / "outbox.db")
    add(outbox)

    def broken(seq: int) -> dict:
        raise ValueError("bad record")

    good = lambda seq: envelope("verdict", seq, StationConfig("d", "s", "F"))  # noqa: E731
    with pytest.raises(ValueError, match="bad record"):
        outbox.append_many([good, good, broken])
    assert outbox.counts() == {"pending": 1}
    records = outbox.append_many([good, good])
    assert [r["seq"] for r in records] == [2, 3]
    assert outbox.counts() == {"pending": 3}
    outbox.close()


def test_a_v1_outbox_upgrades_to_record_schema_v2_with_every_body_unchanged(tmp_path: Path) -> None:
    fixture = Path(__file__).parents[1] / "fixtures" / "outbox-v1.db"
    with sqlite3.connect(fixture) as conn:
        before = conn.execute("SELECT seq, record_id, body, state FROM records ORDER BY seq").fetchall()
    path = tmp_path / "outbox.db"
    shutil.copy(fixture, path)
    outbox = Outbox(path)
    try:
        after = outbox.rows("SELECT seq, record_id, body, state, record_schema FROM records ORDER BY seq")
        assert [row[:4] for row in after] == before  # byte for byte: signed bodies are never rewritten
        assert {row[4] for row in after} == {SCHEMA_V1}
        for record in outbox.records():
            validate(record)  # a v1 body stays valid against v1
        new = add(outbox)
        assert new["schema"] == SCHEMA_ID
        assert outbox.rows("SELECT record_schema FROM records WHERE seq = ?", (new["seq"],)) == [(SCHEMA_ID,)]
    finally:
        outbox.close()
