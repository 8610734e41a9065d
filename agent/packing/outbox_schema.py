"""The outbox file itself: opened durably, created, and migrated from older schema versions.

Kept apart from :mod:`prescreen.packing.outbox` (reading and writing records) because it runs once per
start (and in ``prescreen outbox migrate``), where the outbox's access methods run all day.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prescreen.core.db import connect_durable
from prescreen.core.errors import OutboxError

log = logging.getLogger("prescreen.outbox")


@dataclass(frozen=True)
class OutboxFile:
    """An opened outbox: ``conn`` is in autocommit mode, so every write is either in an explicit
    transaction or committed on its own."""

    conn: sqlite3.Connection


CACHE_KIB = 512  # the outbox connection's SQLite page cache (negative cache_size: KiB)


def open_durable(path: str | Path, *, autocheckpoint: bool = True) -> OutboxFile:
    """Open a SQLite file in WAL mode with ``synchronous=FULL``: a commit survives power loss
    (``autocheckpoint=False``: a :class:`prescreen.core.db.Checkpointer` looks after the WAL).

    Its page cache is held to ``CACHE_KIB``: SQLite's default (2 MB per connection) filled up
    while the agent drained a backlog, the rows passing once through it; the indexes' upper pages
    fit in far less. Measured: a 100,000-record drain peaked 2 MB lower at the same CPU per record,
    and a 3,000-parcel replay took the same CPU time.
    """
    conn = connect_durable(path, autocheckpoint=autocheckpoint)
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return OutboxFile(conn)


# Version 1 as sqlite-utils created it (the same statements, written out): importing sqlite-utils
# (with click, pluggy, tabulate, dateutil and numpy) cost the agent about 25 MB of RSS at start.
_V1 = (
    'CREATE TABLE IF NOT EXISTS "records" ("seq" INTEGER PRIMARY KEY, "record_id" TEXT NOT NULL, '
    '"kind" TEXT, "created_at" TEXT, "body" TEXT NOT NULL, "state" TEXT NOT NULL DEFAULT \'pending\', '
    '"acked_at" TEXT)',
    'CREATE UNIQUE INDEX IF NOT EXISTS "idx_records_record_id" ON "records" ("record_id")',
    'CREATE INDEX IF NOT EXISTS "idx_records_state_seq" ON "records" ("state", "seq")',
    'CREATE TABLE IF NOT EXISTS "meta" ("key" TEXT PRIMARY KEY, "value" TEXT)',
    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '1')",
)


def _create_v1(file: OutboxFile) -> None:
    for statement in _V1:
        file.conn.execute(statement)


# Schema migrations, by the version they produce. Each runs in one transaction with the version
# bump (SQLite DDL is transactional), so a power cut mid-upgrade leaves the old version intact.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        # record size in bytes, for the outbox's byte limit without reading every body
        "ALTER TABLE records ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
        "UPDATE records SET size = length(CAST(body AS BLOB))",
    ),
}
MIGRATIONS[3] = (
    # Downlink messages from customs, by id: a redelivered message is re-acked, never re-applied.
    "CREATE TABLE downlink (message_id TEXT PRIMARY KEY, type TEXT NOT NULL, received_at TEXT NOT NULL, "
    "record_id TEXT, ack TEXT NOT NULL)",
    # Tracking numbers customs asked to hold (hold, RFI, RFS, DNL, watchlist), kept across restarts.
    "CREATE TABLE holds (tracking_number TEXT PRIMARY KEY, type TEXT NOT NULL, reason TEXT, "
    "message_id TEXT, received_at TEXT NOT NULL)",
    # Customs feedback to the trade, per record or per seller (folded into the seller scorecard).
    "CREATE TABLE feedback (message_id TEXT PRIMARY KEY, received_at TEXT NOT NULL, record_id TEXT, "
    "seller TEXT, text TEXT NOT NULL)",
    # Settings changed from the customs side (screening thresholds, active model), applied at start.
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)",
)
MIGRATIONS[4] = (
    # Set when housekeeping erased the personal data of an acked record (see housekeeping.py).
    "ALTER TABLE records ADD COLUMN pii_purged INTEGER NOT NULL DEFAULT 0",
)
MIGRATIONS[5] = (
    # The record schema each body follows (v2 adds entry-grade data). Rows before this migration
    # are v1 by construction; a signed body is never rewritten, so they stay v1 and stay valid.
    "ALTER TABLE records ADD COLUMN record_schema TEXT NOT NULL DEFAULT 'prescreen.record/v1'",
)
MIGRATIONS[6] = (
    # Where each record stands with the receiver, out of the records themselves: an ack used to
    # rewrite every acked ~900-byte row (and its entry in the (state, seq) index), about half of
    # the station's CPU per record drained. ``pending`` holds the seq of each record not yet
    # answered (``pending()`` reads it in seq order, so acked records are never walked); ``acks``
    # what the receiver answered and when. A record is in exactly one of them.
    "CREATE TABLE pending (seq INTEGER PRIMARY KEY)",
    "CREATE TABLE acks (seq INTEGER PRIMARY KEY, state TEXT NOT NULL, acked_at TEXT)",
    # The last ack's time and retention by ack time read this instead of every row.
    "CREATE INDEX idx_acks_acked_at ON acks (acked_at)",
    "INSERT INTO pending (seq) SELECT seq FROM records WHERE state = 'pending'",
    "INSERT INTO acks (seq, state, acked_at) SELECT seq, state, acked_at FROM records "
    "WHERE state <> 'pending'",
    # A record deleted (retention, or by hand: the threat model's "rows deleted from the outbox")
    # takes its place in either table with it: no count of records that are gone, and no ack
    # left behind for a seq a later record may be given.
    "CREATE TRIGGER records_gone AFTER DELETE ON records BEGIN "
    "DELETE FROM pending WHERE seq = old.seq; DELETE FROM acks WHERE seq = old.seq; END",
    "DROP INDEX idx_records_state_seq",
    # Renamed, not dropped: dropping a column rewrites every row (2.3 s and a 105 MB WAL for
    # 100,000 records here; up to the outbox's 2 GB on a station that may be at its disk floor).
    # The names say they are no longer kept, and a query still reading ``state`` fails instead of
    # counting values frozen at the upgrade (a row added since holds the column's default).
    "ALTER TABLE records RENAME COLUMN state TO state_until_v6",
    "ALTER TABLE records RENAME COLUMN acked_at TO acked_at_until_v6",
)
SCHEMA_VERSION = max(MIGRATIONS)


def schema_version(db: OutboxFile) -> int:
    """The outbox schema version recorded in the file (0 for an empty file)."""
    if not db.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        return 0
    row = db.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: OutboxFile, path: str | Path) -> int:
    """Bring the outbox schema up to :data:`SCHEMA_VERSION`; returns the version it started at.

    Raises:
        OutboxError: the file was written by a newer agent (a downgrade): refuse rather than guess.
    """
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise OutboxError(
            f"{path}: outbox schema v{found} is newer than this agent understands (v{SCHEMA_VERSION}): "
            "upgrade the agent instead of downgrading it"
        )
    if found == 0:  # new file; creation is idempotent, so a crash half-way is simply redone
        _create_v1(db)
        found = 1
    for version in range(found + 1, SCHEMA_VERSION + 1):
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                db.conn.execute(statement)
            db.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
            db.conn.execute("COMMIT")
        except sqlite3.Error:
            db.conn.execute("ROLLBACK")
            raise
        log.info("outbox migrated", extra={"path": str(path), "schema_version": version})
    return found


# When the receiver last answered, kept apart from the acks: a requeue or retention removes rows.
SET_LAST_ACK = (
    "INSERT INTO meta (key, value) VALUES ('last_ack_at', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def last_ack_at(conn: sqlite3.Connection) -> str | None:
    """When the receiver last answered (acked or rejected) this outbox's records, or None."""
    found = conn.execute("SELECT value FROM meta WHERE key = 'last_ack_at'").fetchone()
    # An outbox last acked before this row existed: the newest answer it still holds.
    (when,) = found or conn.execute("SELECT MAX(acked_at) FROM acks").fetchone()
    return None if when is None else str(when)


def read_feedback(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Customs feedback messages held in an outbox (none in a file older than schema v3)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone():
        return []
    rows = conn.execute("SELECT record_id, seller, text FROM feedback ORDER BY received_at")
    return [{"record_id": r, "seller": s, "text": t} for r, s, t in rows]


def connect(path: str | Path, *, autocheckpoint: bool = True) -> OutboxFile:
    """Open (creating or upgrading if needed) an outbox with the production durability settings."""
    try:
        db = open_durable(path, autocheckpoint=autocheckpoint)
        migrate(db, path)
    except sqlite3.DatabaseError as exc:
        raise OutboxError(f"{path}: cannot open outbox: {exc}") from exc
    return db
