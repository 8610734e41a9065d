"""Durable SQLite, written once: the outbox, the receiver's store and the order cache open their
files here, write in ``BEGIN IMMEDIATE`` transactions and split long ``IN`` lists here.

Why these settings: WAL lets the uplink read while the station commits; ``synchronous=FULL``
makes a commit survive a power cut (the promise the station gives before it tells anyone);
autocommit mode (``isolation_level=None``) means every write is either in an explicit
transaction or committed on its own, never in one Python opened behind the code's back.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from prescreen.core.files import private

log = logging.getLogger("prescreen.db")
T = TypeVar("T")
# SQLite's default limit on host parameters is 999 before 3.32 (32,766 after): stay well below.
IN_CHUNK = 500
# With a Checkpointer, a commit checkpoints only once the WAL holds this many bytes of pages
# (4,000 pages of 4 KiB), not SQLite's 1,000 pages: the thread has then copied most of it, and the
# commit's checkpoint, run with no other write in between, lets the next write start the WAL
# again from its beginning. The thread alone never gets that far under steady writes (frames land
# while it copies), so without this the WAL grew without bound (635 MB in 8 s of replay-like
# commits).
FALLBACK_CHECKPOINT_BYTES = 16_000 * 1024
CHECKPOINT_THREAD_PREFIX = "checkpoint-"  # a Checkpointer's thread is named this and its file's name


def connect_durable(
    path: str | Path,
    *,
    timeout_s: float = 10.0,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    autocheckpoint: bool = True,
    page_size: int | None = None,
) -> sqlite3.Connection:
    """A connection to ``path`` (created private to the service user) in WAL mode.

    ``synchronous="NORMAL"`` is for files whose loss costs only a refetch (the order cache).
    ``autocheckpoint=False`` is for files a :class:`Checkpointer` looks after: their commits
    checkpoint only past :data:`FALLBACK_CHECKPOINT_BYTES`. ``page_size`` (a power of two from 512
    to 65,536) applies to a file this call creates; a file keeps the page size it was made with.
    """
    conn = sqlite3.connect(
        str(private(path)), timeout=timeout_s, isolation_level=None, check_same_thread=False
    )
    if page_size is not None:  # before WAL mode, which writes the new file's first page
        conn.execute(f"PRAGMA page_size={int(page_size)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    if not autocheckpoint:
        conn.execute(f"PRAGMA wal_autocheckpoint={_fallback_checkpoint_pages(conn)}")
    return conn


def _fallback_checkpoint_pages(conn: sqlite3.Connection) -> int:
    """:data:`FALLBACK_CHECKPOINT_BYTES` in pages of ``conn``'s database."""
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    return max(1, FALLBACK_CHECKPOINT_BYTES // int(page_size))


class Checkpointer:
    """Copies a database's WAL back into it on a thread and connection of its own.

    Why: SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages,
    so that one commit (a verdict, an ack's marks, a receiver's batch group) also writes those
    pages into the database file and fsyncs it, milliseconds that whoever waits on that commit
    pays. The owner opens its connection with ``autocheckpoint=False`` and this thread runs a
    PASSIVE checkpoint (it never blocks a reader or a writer) every ``interval_s``; SQLite does the
    work with Python's GIL released. The owner's commits still checkpoint past
    :data:`FALLBACK_CHECKPOINT_BYTES`, which keeps the WAL bounded under steady writes and if this
    thread stops. Closing the last connection checkpoints what is left.
    """

    def __init__(self, path: str | Path, *, interval_s: float = 0.25) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self._stop = threading.Event()
        name = CHECKPOINT_THREAD_PREFIX + self.path.name
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Checkpointer:
        """Start checkpointing; returns self."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread (the owner's connection, closed last, checkpoints the rest)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), timeout=0, isolation_level=None)
        except sqlite3.Error as exc:  # the owner's commits checkpoint past the fallback instead
            log.error("checkpointer not started", extra={"db": str(self.path), "reason": str(exc)})
            return
        failing = False
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a full disk, another checkpoint running: next time
                    if not failing:
                        log.warning("checkpoint failed", extra={"db": str(self.path), "reason": str(exc)})
                    failing = True
                    continue
                if failing:
                    log.info("checkpoint works again", extra={"db": str(self.path)})
                failing = False
        finally:
            conn.close()


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``: no deadlock upgrading a read
    lock), committed on success and rolled back on any exception, which propagates."""
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        yield cur
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def chunked(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``, for ``IN (...)`` lists under SQLite's parameter cap."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int) -> str:
    """``?, ?, ?`` for an ``IN`` list of ``count`` parameters."""
    return ", ".join("?" * count)


def where_in(column: str, values: Sequence[int]) -> tuple[str, tuple[int, ...]]:
    """SQL selecting rows whose ``column`` is one of ``values`` (sorted, distinct integers), and
    its parameters: a range when they run without a gap, as a batch's seqs do (SQLite then builds
    no temporary index of an ``IN`` list: about 1 µs a value on the reference machine)."""
    if values[-1] - values[0] + 1 == len(values):
        return f"{column} BETWEEN ? AND ?", (values[0], values[-1])
    return f"{column} IN ({marks(len(values))})", tuple(values)
