"""The durable outbox: every record is committed here before anyone is told its verdict.

SQLite in WAL mode with ``synchronous=FULL``: a committed record survives power loss. A record
stays ``pending`` until the receiver's application-level ack for its id arrives; only then is it
``acked`` (and later pruned). The per-device sequence number is assigned inside the same
transaction that stores the record, so sequence numbers have no gaps unless rows are lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sqlite_utils
from prescreen.errors import OutboxError
from prescreen.records import Record, dumps, utc_now

SCHEMA_VERSION = 1


def open_durable(path: str | Path) -> sqlite_utils.Database:
    """Open a SQLite file in WAL mode with ``synchronous=FULL``: a commit survives power loss.

    Shared by the outbox and the receiver's store; autocommit mode, so every write is either in
    an explicit transaction or committed on its own.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return sqlite_utils.Database(conn)


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) an outbox database with the production durability settings."""
    try:
        db = open_durable(path)
        if not db.table("records").exists():
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
            )
            db.table("records").create_index(["record_id"], unique=True)
            db.table("records").create_index(["state", "seq"])
            db.table("meta").insert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
    except sqlite3.DatabaseError as exc:
        raise OutboxError(f"{path}: cannot open outbox: {exc}") from exc
    return db


class Outbox:
    """Thread-safe access to one outbox file (station writes, uplink reads and acks)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = connect(self.path)
        self._conn = self.db.conn
        self._lock = threading.Lock()
        row = self._conn.execute("SELECT IFNULL(MAX(seq), 0) FROM records").fetchone()
        self._last_seq: int = row[0]

    def append(self, build: Callable[[int], Record]) -> Record:
        """Assign the next sequence number, build the record with it, and commit it durably.

        Returns the record as committed. Raises :class:`OutboxError` if it could not be
        stored (disk full, read-only file): then nothing was committed and the seq is reused.
        """
        with self._lock:
            seq = self._last_seq + 1
            record = build(seq)
            try:
                self._conn.execute(
                    "INSERT INTO records (seq, record_id, kind, created_at, body, state) "
                    "VALUES (?, ?, ?, ?, ?, 'pending')",
                    (seq, record["record_id"], record["kind"], record["created_at"], dumps(record)),
                )
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: record not committed: {exc}") from exc
            self._last_seq = seq
            return record

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
        ids = list(record_ids)
        if not ids:
            return 0
        now = utc_now()
        changed = 0
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    cursor = self._conn.execute(
                        f"UPDATE records SET state = ?, acked_at = ? "
                        f"WHERE state = 'pending' AND record_id IN ({marks})",
                        (state, now, *chunk),
                    )
                    changed += cursor.rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise OutboxError(f"{self.path}: ack not recorded: {exc}") from exc
        return changed

    def counts(self) -> dict[str, int]:
        """Rows by state, e.g. ``{"pending": 3, "acked": 120}``."""
        with self._lock:
            rows = self._conn.execute("SELECT state, COUNT(*) FROM records GROUP BY state")
            return dict(rows)

    def records(self) -> list[dict[str, Any]]:
        """Every stored record body, oldest first (for tests, exports and reports)."""
        with self._lock:
            rows = self._conn.execute("SELECT body FROM records ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        """Close the connection; committed records are already on disk."""
        with self._lock:
            self._conn.close()
