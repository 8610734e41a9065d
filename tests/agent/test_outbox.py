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

# Where each record stands (schema v6): waiting in pending, or answered in acks.
STATES = (
    "SELECT seq, 'pending' AS state, NULL AS acked_at FROM pending "
    "UNION ALL SELECT seq, state, acked_at FROM acks"
)


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
        after = outbox.rows(
            f"SELECT r.seq, r.record_id, r.body, s.state, r.record_schema FROM records r "
            f"JOIN ({STATES}) s ON s.seq = r.seq ORDER BY r.seq"
        )
        assert [row[:4] for row in after] == before  # byte for byte: signed bodies are never rewritten
        assert {row[4] for row in after} == {SCHEMA_V1}
        for record in outbox.records():
            validate(record)  # a v1 body stays valid against v1
        new = add(outbox)
        assert new["schema"] == SCHEMA_ID
        assert outbox.rows("SELECT record_schema FROM records WHERE seq = ?", (new["seq"],)) == [(SCHEMA_ID,)]
    finally:
        outbox.close()


def test_a_v5_outbox_keeps_where_each_record_stands(tmp_path: Path) -> None:
    """The fixture was written by the schema-v5 agent (fdf7520), where each record's row held its
    state: seqs 1, 2 and 5 acked, 3 rejected, 4, 6 and 7 pending. v6 moves that beside the rows."""
    fixture = Path(__file__).parents[1] / "fixtures" / "outbox-v5.db"
    with sqlite3.connect(fixture) as conn:
        before = conn.execute(
            "SELECT seq, record_id, body, state, acked_at, created_at FROM records ORDER BY seq"
        ).fetchall()
    states = ["acked", "acked", "rejected", "pending", "acked", "pending", "pending"]
    assert [row[3] for row in before] == states
    path = tmp_path / "outbox.db"
    shutil.copy(fixture, path)
    outbox = Outbox(path)
    try:
        after = outbox.rows(
            f"SELECT r.seq, r.record_id, r.body, s.state, s.acked_at FROM records r "
            f"JOIN ({STATES}) s ON s.seq = r.seq ORDER BY r.seq"
        )
        assert after == [row[:5] for row in before]  # states, ack times and bodies as they were
        assert outbox.counts() == {"acked": 3, "rejected": 1, "pending": 3}
        assert [r[0] for r in outbox.pending(10)] == [4, 6, 7]
        assert outbox.backlog() == {
            "pending": 3,
            "oldest_pending_at": before[3][5],
            "last_ack_at": max(row[4] for row in before if row[4]),
        }
        with pytest.raises(sqlite3.OperationalError, match="no such column: state"):
            outbox.rows("SELECT COUNT(*) FROM records WHERE state = 'pending'")  # not a frozen answer
        indexes = {r[0] for r in outbox.rows("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "idx_records_state_seq" not in indexes
        assert outbox.mark_acked_seqs([4, 5]) == 1  # 5 was acked before the upgrade
        assert outbox.requeue() == 1
        assert add(outbox)["seq"] == 8
    finally:
        outbox.close()
    reopened = Outbox(path)
    try:
        assert [r[0] for r in reopened.pending(10)] == [3, 6, 7, 8]
        assert reopened.counts() == {"acked": 4, "pending": 4}
    finally:
        reopened.close()


def test_requeue_puts_only_rejected_records_back_in_seq_order(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    records = [add(outbox) for _ in range(6)]
    assert outbox.mark_acked_seqs([1, 2, 3]) == 3
    assert outbox.mark_acked_seqs([4, 5], state="rejected") == 2
    assert outbox.mark_acked_seqs([4]) == 0  # answered already: an ack cannot turn a rejection around
    assert outbox.requeue([records[4]["record_id"], records[0]["record_id"]]) == 1  # seq 1 was acked
    assert [r[0] for r in outbox.pending(10)] == [5, 6]
    assert outbox.counts() == {"acked": 3, "rejected": 1, "pending": 2}
    assert outbox.requeue() == 1
    assert [r[0] for r in outbox.pending(10)] == [4, 5, 6]
    assert outbox.requeue() == 0
    outbox.close()


def test_marks_by_seq_touch_only_the_seqs_named(tmp_path: Path) -> None:
    """A run of seqs is marked as a range, scattered ones as a list: neither reaches past them."""
    outbox = Outbox(tmp_path / "outbox.db")
    for _ in range(8):
        add(outbox)
    assert outbox.mark_acked_seqs([4, 2, 3, 3]) == 3  # one run, given in any order
    assert outbox.mark_acked_seqs([1, 6, 8, 42]) == 3  # gaps, and a seq the outbox never had
    assert [r[0] for r in outbox.pending(10)] == [5, 7]
    assert outbox.mark_acked_seqs([]) == 0
    assert outbox.counts() == {"acked": 6, "pending": 2}
    outbox.close()


def test_the_backlog_names_the_oldest_pending_record_and_the_last_ack(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    station = StationConfig("d1", "s1", "X")

    def dated(seq: int) -> dict:  # a day apart: which record is the oldest is not left to the clock
        return {**envelope("verdict", seq, station), "created_at": f"2026-01-0{seq}T00:00:00Z"}

    made = [outbox.append(dated) for _ in range(4)]
    assert outbox.backlog() == {"pending": 4, "oldest_pending_at": made[0]["created_at"], "last_ack_at": None}
    outbox.mark_acked_seqs([1, 2])
    outbox.mark_acked_seqs([3], state="rejected")
    backlog = outbox.backlog()
    assert (backlog["pending"], backlog["oldest_pending_at"]) == (1, made[3]["created_at"])
    (last,) = outbox.rows("SELECT acked_at FROM acks WHERE seq = 3")[0]  # the last mark's time
    assert last is not None
    assert backlog["last_ack_at"] == last
    outbox.requeue()
    assert outbox.backlog()["oldest_pending_at"] == made[2]["created_at"]
    outbox.mark_acked_seqs([3, 4])
    assert outbox.backlog()["pending"] == 0
    assert outbox.backlog()["oldest_pending_at"] is None
    outbox.close()


def test_records_deleted_by_hand_take_their_pending_and_ack_rows_with_them(tmp_path: Path) -> None:
    """Rows deleted from the outbox (the threat model's case, or retention) leave no count behind
    and no ack a later record with the same seq would inherit."""
    outbox = Outbox(tmp_path / "outbox.db")
    for _ in range(4):
        add(outbox)
    assert outbox.mark_acked_seqs([1, 2]) == 2
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        conn.execute("DELETE FROM records WHERE seq IN (2, 3)")
    assert outbox.counts() == {"acked": 1, "pending": 1}
    assert sorted(seq for seq, _, _ in outbox.db.conn.execute(STATES)) == [1, 4]
    outbox.close()


def test_the_last_ack_time_stays_when_the_answer_it_came_from_is_requeued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A requeue (or retention) removes the answer rows; when the receiver last answered does not
    move back with them, and survives a restart."""
    outbox = Outbox(tmp_path / "outbox.db")
    for _ in range(3):
        add(outbox)
    monkeypatch.setattr("prescreen.packing.outbox.utc_now", lambda: "2026-11-01T00:00:00.000Z")
    outbox.mark_acked_seqs([1])
    monkeypatch.setattr("prescreen.packing.outbox.utc_now", lambda: "2026-11-02T00:00:00.000Z")
    outbox.mark_acked_seqs([2], state="rejected")
    assert outbox.requeue() == 1
    assert outbox.backlog()["last_ack_at"] == "2026-11-02T00:00:00.000Z"  # the newest row left: 11-01
    monkeypatch.setattr("prescreen.packing.outbox.utc_now", lambda: "2026-11-03T00:00:00.000Z")
    assert outbox.mark_acked_seqs([1]) == 0  # nothing pending was answered: no new ack time
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.db")
    assert reopened.backlog()["last_ack_at"] == "2026-11-02T00:00:00.000Z"
    reopened.close()
