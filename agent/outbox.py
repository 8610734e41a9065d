"""The durable outbox: every record is committed here before anyone is told its verdict.

SQLite in WAL mode with ``synchronous=FULL``: a committed record survives power loss. A record
stays ``pending`` until the receiver's application-level ack for its id arrives; only then is it
``acked`` (and later pruned). The per-device sequence number is assigned inside the same
transaction that stores the record, so sequence numbers have no gaps unless rows are lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils
from prescreen.errors import OutboxError
from prescreen.files import private
from prescreen.records import Record, dumps, utc_now

log = logging.getLogger("prescreen.outbox")


class Signer(Protocol):
    """Adds a signature to a record (:class:`prescreen.signing.DeviceKey`)."""

    def sign(self, record: Record) -> Record: ...


def open_durable(path: str | Path) -> sqlite_utils.Database:
    """Open a SQLite file in WAL mode with ``synchronous=FULL``: a commit survives power loss.

    Shared by the outbox and the receiver's store; autocommit mode, so every write is either in
    an explicit transaction or committed on its own.
    """
    conn = sqlite3.connect(str(private(path)), timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return sqlite_utils.Database(conn)


def _create_v1(db: sqlite_utils.Database) -> None:
    db.table("records").create(
        {
            "seq": int,
            "record_id": str,
            "kind": str,
            "created_at": str,
            "body": str,
            "state": str,
            "acked_at": str,
        },
        pk="seq",
        not_null={"record_id", "body", "state"},
        defaults={"state": "pending"},
        if_not_exists=True,
    )
    db.table("records").create_index(["record_id"], unique=True, if_not_exists=True)
    db.table("records").create_index(["state", "seq"], if_not_exists=True)
    db.table("meta").insert({"key": "schema_version", "value": "1"}, pk="key", replace=True)


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
SCHEMA_VERSION = max(MIGRATIONS)
Statement = tuple[str, tuple[Any, ...]]


def schema_version(db: sqlite_utils.Database) -> int:
    """The outbox schema version recorded in the file (0 for an empty file)."""
    if not db.table("meta").exists():
        return 0
    row = db.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite_utils.Database, path: str | Path) -> int:
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


def read_feedback(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Customs feedback messages held in an outbox (none in a file older than schema v3)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone():
        return []
    rows = conn.execute("SELECT record_id, seller, text FROM feedback ORDER BY received_at")
    return [{"record_id": r, "seller": s, "text": t} for r, s, t in rows]


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (creating or upgrading if needed) an outbox with the production durability settings."""
    try:
        db = open_durable(path)
        migrate(db, path)
    except sqlite3.DatabaseError as exc:
        raise OutboxError(f"{path}: cannot open outbox: {exc}") from exc
    return db


def seq_file_of(key_path: Path) -> Path:
    """Where the last sequence number a device key signed is kept: beside the key."""
    return key_path.with_name(key_path.name + ".seq")


def read_seq(path: Path) -> tuple[str, int] | None:
    """(key id, last sequence number) kept in ``path``, or None if there is none (yet)."""
    try:
        key_id, last = path.read_text(encoding="ascii").split()
        return key_id, int(last)
    except (OSError, ValueError):
        return None


class Outbox:
    """Thread-safe access to one outbox file (station writes, uplink reads and acks)."""

    def __init__(
        self, path: str | Path, *, signer: Signer | None = None, seq_file: Path | None = None
    ) -> None:
        self.path = Path(path)
        # Records are signed at commit, so the stored body is exactly what the receiver verifies.
        self._signer = signer
        self.db = connect(self.path)
        self._conn = self.db.conn
        self._lock = threading.Lock()
        # Kinds refused while the disk is at its floor (set by housekeeping; verdicts never are).
        self.shed: frozenset[str] = frozenset()
        row = self._conn.execute("SELECT IFNULL(MAX(seq), 0) FROM records").fetchone()
        floor = self._conn.execute("SELECT value FROM meta WHERE key = 'seq_floor'").fetchone()
        # Pruning may empty the table; the last seq is kept in meta so none is ever reused.
        self._last_seq: int = max(row[0], int(floor[0]) if floor else 0)
        # ... and beside the device key, so an emptied or replaced outbox does not start again at 1
        # (the receiver would refuse every record as a replay).
        self._seq_fd: int | None = None
        if seq_file is not None:
            kept = read_seq(seq_file)
            if kept is not None and kept[1] > self._last_seq:
                log.warning(
                    "outbox behind its device key: sequence numbers go on after the last one signed",
                    extra={"outbox_last_seq": self._last_seq, "key_last_seq": kept[1]},
                )
                self._last_seq = kept[1]
            self._seq_fd = os.open(private(seq_file), os.O_WRONLY)
            self._keep_seq()

    def append(self, build: Callable[[int], Record]) -> Record:
        """Assign the next sequence number, build the record with it, and commit it durably.

        Returns the record as committed. Raises :class:`OutboxError` if it could not be
        stored (disk full, read-only file): then nothing was committed and the seq is reused.
        """
        return self.append_many([build])[0]

    def append_many(
        self,
        builds: list[Callable[[int], Record]],
        *,
        also: Callable[[list[Record]], list[Statement]] | None = None,
    ) -> list[Record]:
        """Group commit: like :meth:`append` for each builder, in one durable transaction.

        For batch work (replays, benchmarks, imports) where one fsync per record would bound the
        rate; either every record is committed or none is. ``also`` gives SQL statements (from the
        built records) committed in the same transaction: a downlink message's effect and its
        record are stored together or not at all.
        """
        with self._lock:
            records: list[Record] = []
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for offset, build in enumerate(builds, start=1):
                    record = build(self._last_seq + offset)
                    if record["kind"] in self.shed:
                        raise OutboxError(f"{self.path}: disk at its floor: {record['kind']} record shed")
                    if self._signer is not None:
                        record = self._signer.sign(record)
                    body = dumps(record)
                    self._conn.execute(
                        "INSERT INTO records (seq, record_id, kind, created_at, body, state, size, "
                        "record_schema) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                        (
                            record["seq"],
                            record["record_id"],
                            record["kind"],
                            record["created_at"],
                            body,
                            len(body),
                            record["schema"],
                        ),
                    )
                    records.append(record)
                for sql, params in also(records) if also is not None else ():
                    self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise OutboxError(f"{self.path}: record not committed: {exc}") from exc
                raise
            self._last_seq += len(records)
            self._keep_seq()
            return records

    def _keep_seq(self) -> None:
        """Write the last sequence number beside the key (one page-cache write, no fsync: it guards
        against an outbox deleted or emptied by hand, which happens long after the OS wrote it)."""
        if self._seq_fd is not None:
            key_id = getattr(self._signer, "key_id", "unsigned")
            os.pwrite(self._seq_fd, f"{key_id} {self._last_seq:<20}\n".encode(), 0)

    def requeue(self, record_ids: list[str] | None = None) -> int:
        """Put ``rejected`` records (all, or these) back to ``pending`` after an operator's review;
        returns how many. The running uplink picks them up on its next pass."""
        where = "" if record_ids is None else f" AND record_id IN ({', '.join('?' * len(record_ids))})"
        with self._lock:
            sql = f"UPDATE records SET state = 'pending' WHERE state = 'rejected'{where}"
            cur = self._conn.execute(sql, tuple(record_ids or ()))
        return cur.rowcount

    def pending(self, limit: int, *, after_seq: int = 0) -> list[tuple[int, str, str]]:
        """Up to ``limit`` pending (seq, record_id, body) rows with seq > ``after_seq``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, record_id, body FROM records WHERE state = 'pending' AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def mark_acked(self, record_ids: Iterable[str], *, state: str = "acked") -> int:
        """Mark records acknowledged by the receiver; returns how many changed state."""
        return self._mark("record_id", list(record_ids), state)

    def mark_acked_seqs(self, seqs: Iterable[int], *, state: str = "acked") -> int:
        """Like :meth:`mark_acked` by sequence number: a primary-key lookup, ~3x cheaper."""
        return self._mark("seq", list(seqs), state)

    def _mark(self, column: str, keys: list[Any], state: str) -> int:
        if not keys:
            return 0
        now = utc_now()
        changed = 0
        with self._lock:
            # An ack mark needs no fsync of its own: if a power cut takes it back, the record is
            # pending again, is re-sent and the receiver dedupes it. The next record commit (FULL)
            # makes it durable anyway. Without its fsync it holds the write lock for far less.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    cursor = self._conn.execute(
                        f"UPDATE records SET state = ?, acked_at = ? "
                        f"WHERE state = 'pending' AND {column} IN ({marks})",
                        (state, now, *chunk),
                    )
                    changed += cursor.rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise OutboxError(f"{self.path}: ack not recorded: {exc}") from exc
            finally:
                self._conn.execute("PRAGMA synchronous=FULL")
        return changed

    def counts(self) -> dict[str, int]:
        """Rows by state, e.g. ``{"pending": 3, "acked": 120}``."""
        with self._lock:
            rows = self._conn.execute("SELECT state, COUNT(*) FROM records GROUP BY state")
            return dict(rows)

    def backlog(self) -> dict[str, Any]:
        """Pending count, the oldest pending record's creation time and the last ack time."""
        with self._lock:
            pending, oldest = self._conn.execute(
                "SELECT COUNT(*), MIN(created_at) FROM records WHERE state = 'pending'"
            ).fetchone()
            (last_ack,) = self._conn.execute("SELECT MAX(acked_at) FROM records").fetchone()
        return {"pending": pending, "oldest_pending_at": oldest, "last_ack_at": last_ack}

    def get(self, record_id: str) -> Record | None:
        """The stored record with this id, if the outbox still holds it."""
        with self._lock:
            row = self._conn.execute("SELECT body FROM records WHERE record_id = ?", (record_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def latest_verdict(self, tracking_number: str) -> Record | None:
        """The newest verdict record for a tracking number (a scan over the bodies: for
        compliance actions, not for the hot path)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM records WHERE kind = 'verdict' "
                "AND json_extract(body, '$.parcel.tracking_number') = ? ORDER BY seq DESC LIMIT 1",
                (tracking_number,),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def feedback(self) -> list[dict[str, Any]]:
        """Customs feedback messages to the trade, oldest first."""
        with self._lock:
            return read_feedback(self._conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one durable write transaction (for housekeeping)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the outbox's side tables (holds, feedback, settings)."""
        with self._lock:
            return [tuple(r) for r in self._conn.execute(sql, params).fetchall()]

    def setting(self, key: str) -> str | None:
        """A value of the settings table (state that must survive a restart), or None."""
        found = self.rows("SELECT value FROM settings WHERE key = ?", (key,))
        return str(found[0][0]) if found else None

    def put_setting(self, key: str, value: str | None) -> None:
        """Store (or with None, delete) a settings value durably."""
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
                    (key, value, datetime.now(timezone.utc).isoformat(timespec="seconds")),
                )

    def records(self) -> list[dict[str, Any]]:
        """Every stored record body, oldest first (for tests, exports and reports)."""
        with self._lock:
            rows = self._conn.execute("SELECT body FROM records ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        """Close the connection; committed records are already on disk."""
        with self._lock:
            self._conn.close()
            if self._seq_fd is not None:
                os.close(self._seq_fd)
                self._seq_fd = None
