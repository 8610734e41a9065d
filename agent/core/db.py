"""Durable SQLite, written once: the outbox, the receiver's store and the order cache open their
files here, write in ``BEGIN IMMEDIATE`` transactions and split long ``IN`` lists here.

Why these settings: WAL lets the uplink read while the station commits; ``synchronous=FULL``
makes a commit survive a power cut (the promise the station gives before it tells anyone);
autocommit mode (``isolation_level=None``) means every write is either in an explicit
transaction or committed on its own, never in one Python opened behind the code's back.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from prescreen.core.files import private

T = TypeVar("T")
# SQLite's default limit on host parameters is 999 before 3.32 (32,766 after): stay well below.
IN_CHUNK = 500


def connect_durable(
    path: str | Path, *, timeout_s: float = 10.0, synchronous: Literal["FULL", "NORMAL"] = "FULL"
) -> sqlite3.Connection:
    """A connection to ``path`` (created private to the service user) in WAL mode.

    ``synchronous="NORMAL"`` is for files whose loss costs only a refetch (the order cache).
    """
    conn = sqlite3.connect(
        str(private(path)), timeout=timeout_s, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


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
