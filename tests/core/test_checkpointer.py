"""The background checkpointer: writers' commits never copy the WAL back, its thread does."""

from __future__ import annotations

import time
from pathlib import Path

from prescreen.core.db import FALLBACK_CHECKPOINT_BYTES, Checkpointer, connect_durable, immediate
from prescreen.packing.outbox import Outbox

ROWS = 6000  # ~6 MB of rows (1,500 pages): past SQLite's 1,000-page automatic checkpoint


def _write(path: Path, *, autocheckpoint: bool) -> tuple[int, int]:
    """(database file size, WAL size) right after committing ROWS rows, the connection still open."""
    conn = connect_durable(path, autocheckpoint=autocheckpoint)
    conn.execute("CREATE TABLE t (body TEXT)")
    with immediate(conn) as cur:
        cur.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * ROWS)
    sizes = path.stat().st_size, Path(f"{path}-wal").stat().st_size
    conn.close()
    return sizes


def test_commits_do_not_checkpoint_when_a_checkpointer_looks_after_the_file(tmp_path: Path) -> None:
    automatic_db, _ = _write(tmp_path / "auto.db", autocheckpoint=True)
    deferred_db, deferred_wal = _write(tmp_path / "deferred.db", autocheckpoint=False)
    assert automatic_db > ROWS * 1000  # SQLite's own checkpoint ran inside the commit
    assert deferred_db < ROWS * 1000 < deferred_wal  # the rows are still only in the WAL


def test_the_checkpointer_copies_the_wal_into_the_database(tmp_path: Path) -> None:
    path = tmp_path / "bg.db"
    conn = connect_durable(path, autocheckpoint=False)
    conn.execute("CREATE TABLE t (body TEXT)")
    checkpointer = Checkpointer(path, interval_s=0.01).start()
    try:
        with immediate(conn) as cur:
            cur.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * ROWS)
        deadline = time.monotonic() + 10
        while path.stat().st_size < ROWS * 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.stat().st_size > ROWS * 1000  # copied while the writer's connection is open
    finally:
        checkpointer.close()
        conn.close()
    assert not checkpointer._thread.is_alive()


def test_an_outbox_runs_its_checkpoints_off_the_commit_path(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        (autocheckpoint,) = outbox.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert autocheckpoint == FALLBACK_CHECKPOINT_BYTES // 4096 == 4000  # 4 KiB pages
        assert outbox._checkpointer._thread.is_alive()
    finally:
        outbox.close()
    assert not outbox._checkpointer._thread.is_alive()


def test_steady_writes_keep_the_wal_bounded_beside_the_checkpointer(tmp_path: Path) -> None:
    """Frames land while the thread copies, so it alone never lets the WAL start again from its
    beginning; the commits' fallback checkpoint does (without it the WAL grew without bound)."""
    path = tmp_path / "steady.db"
    conn = connect_durable(path, synchronous="NORMAL", autocheckpoint=False)
    conn.execute("CREATE TABLE t (body TEXT)")
    checkpointer = Checkpointer(path, interval_s=0.01).start()
    largest = 0
    try:
        for _ in range(600):  # 60 MB of rows, 100 at a time
            with immediate(conn) as cur:
                cur.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100)
            largest = max(largest, Path(f"{path}-wal").stat().st_size)
    finally:
        checkpointer.close()
        conn.close()
    frame = 4096 + 24  # a WAL frame: its page and its header
    # A commit's checkpoint that meets the thread's is put off to the next commit: about twice the
    # fallback at most, where the WAL grew with every row written (60 MB) without it.
    assert largest < 2 * FALLBACK_CHECKPOINT_BYTES // 4096 * frame < 40 * 2**20
