"""The uplink reads and marks the outbox in chunks (a verdict's commit waits for one chunk at most):
the rows and counts are the same as in one go, in seq order, wherever the chunks fall."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prescreen.core.records import envelope
from prescreen.ops.config import StationConfig
from prescreen.packing import outbox as outbox_module
from prescreen.packing.outbox import Outbox

STATION = StationConfig("d1", "s1", "X")


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Outbox:
    monkeypatch.setattr(outbox_module, "READ_CHUNK", 7)
    monkeypatch.setattr(outbox_module, "MARK_CHUNK", 7)
    box = Outbox(tmp_path / "outbox.db")
    box.append_many([lambda seq: envelope("verdict", seq, STATION)] * 50)
    return box


def test_pending_reads_across_chunks_in_order(outbox: Outbox) -> None:
    assert [r[0] for r in outbox.pending(30)] == list(range(1, 31))
    assert [r[0] for r in outbox.pending(30, after_seq=40)] == list(range(41, 51))
    assert [r[0] for r in outbox.pending(14, after_seq=7)] == list(range(8, 22))  # exactly two chunks
    assert outbox.pending(5, after_seq=50) == []


def test_marks_across_chunks_count_each_record_once(outbox: Outbox) -> None:
    assert outbox.mark_acked_seqs([*range(1, 24), 23, 99]) == 23
    assert outbox.mark_acked_seqs(range(1, 30)) == 6
    assert outbox.counts() == {"acked": 29, "pending": 21}
    assert [r[0] for r in outbox.pending(100)] == list(range(30, 51))
    # each record is in exactly one of the two tables: pending, or answered
    assert outbox.rows(
        "SELECT COUNT(*) FROM records "
        "WHERE (seq IN (SELECT seq FROM pending)) + (seq IN (SELECT seq FROM acks)) = 1"
    ) == [(50,)]


def test_a_commit_gets_in_between_chunks(outbox: Outbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a long ack is being marked, a record commit waits for one chunk, not the whole ack."""
    held: list[int] = []
    real_lock = outbox._lock

    class Counting:
        def __enter__(self) -> None:
            real_lock.acquire()
            held.append(threading.get_ident())

        def __exit__(self, *exc: object) -> None:
            real_lock.release()

    monkeypatch.setattr(outbox, "_lock", Counting())
    outbox.mark_acked_seqs(range(1, 50))
    assert len(held) == 7  # 49 seqs, 7 per hold: the lock was let go six times in between
