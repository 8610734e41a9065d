"""The receiver's record store: SQLite by default, PostgreSQL when several receivers share it.

One SQL text serves both back ends (``?`` placeholders become ``%s`` for psycopg), so the rules
that make the store exactly-once are written once: the record id is the primary key, a record is
inserted with ``ON CONFLICT DO NOTHING`` inside one transaction per batch together with its
counters, and only after that commit is the batch acked. Under PostgreSQL two receivers may race
on the same record; the loser's insert does nothing and it counts a duplicate. A device sequence
number has one record too (a UNIQUE index): a receiver whose insert loses that race rejects its
record as replayed (:mod:`prescreen.sync.receiver`).
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prescreen.core.db import Checkpointer, chunked, connect_durable, immediate, marks
from prescreen.core.errors import ConfigError
from prescreen.core.files import private
from prescreen.sync.store_schema import COUNTERS, STORE_VERSION, Cursor, setup

__all__ = ["COLUMNS", "COUNTERS", "STORE_VERSION", "Cursor", "Filters", "Store", "open_store"]

COLUMNS = (
    "record_id",
    "device_id",
    "site_id",
    "seq",
    "kind",
    "verdict",
    "tracking_number",
    "created_at",
    "received_at",
    "body",
    "record_schema",  # the schema version the body names (prescreen.record/v1 or v2)
)

# The page size of a store this receiver creates (one made before keeps its own). A record row is
# ~1 KB, so SQLite's default 4 KiB pages hold three or four: a commit of a few thousand rows
# splits and writes far more pages into the WAL. Receiver CPU per record storing 100,000 records
# (no MQTT), alternately on one quiet machine: 4 KiB 14.3-14.5 µs, 16 KiB 11.9-12.1 (a sweep
# under load: 8 KiB 13.4-14.1, 32 KiB 11.4-12.0, 64 KiB 12.0-13.3); 16 KiB gets most of it
# without making a small commit write much more. `bench sync`: 54,166-58,866 -> 58,672-68,863/s.
PAGE_SIZE = 16384
_INSERT = (
    f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT DO NOTHING"  # record_id (a copy) or (site_id, device_id, seq) (a replay): the caller tells
)


class Reader(Protocol):
    """What :meth:`Store.stream` reads with: a plain sqlite3 cursor or a psycopg server-side one."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Any: ...

    def fetchmany(self, size: int, /) -> list[Any]: ...


@dataclass(frozen=True)
class Filters:
    """What to select records by; ``None`` means any."""

    tracking_number: str | None = None
    device_id: str | None = None
    verdict: str | None = None
    since: str | None = None  # RFC 3339, compared with created_at
    until: str | None = None
    kinds: tuple[str, ...] | None = None  # e.g. ("verdict", "downlink"): only records of these kinds


class Store(abc.ABC):
    """SQL shared by both back ends; subclasses supply the connection and transactions."""

    placeholder = "?"
    lock_row = ""  # PostgreSQL: FOR UPDATE, so two receivers starting together migrate once

    def _sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Cursor]:
        """A cursor inside one transaction, committed on success and rolled back on error."""

    def _setup(self) -> None:
        with self.transaction() as cur:
            setup(cur, self._sql, self.lock_row)

    def schema_version(self) -> int:
        """The store's schema version (:data:`STORE_VERSION` once opened)."""
        with self.transaction() as cur:
            cur.execute("SELECT value FROM store_meta WHERE key = 'schema_version'")
            return int(cur.fetchone()[0])

    def insert_many(self, cur: Cursor, rows: Sequence[Sequence[Any]]) -> int:
        """Insert rows of :data:`COLUMNS`; returns how many were new. The rest were stored already
        (their record id) or their device sequence number belongs to another record (a replay that
        passed a check before another receiver's commit: :meth:`seq_owners` tells them apart)."""
        if not rows:
            return 0
        cur.executemany(self._sql(_INSERT), rows)
        return int(cur.rowcount)

    def seq_owners(self, cur: Cursor, site_id: str, device_id: str, seqs: list[int]) -> dict[int, str]:
        """{seq: record id} of the records already stored under these device sequence numbers
        (one query per 500, not one per record)."""
        owners: dict[int, str] = {}
        for chunk in chunked(seqs):
            cur.execute(
                self._sql(
                    "SELECT seq, record_id FROM records WHERE site_id = ? AND device_id = ? "
                    f"AND seq IN ({marks(len(chunk))})"
                ),
                (site_id, device_id, *chunk),
            )
            owners.update((int(seq), str(record_id)) for seq, record_id in cur.fetchall())
        return owners

    def add_counts(self, cur: Cursor, counts: dict[str, int]) -> None:
        """Add to the durable counters (inside the batch's transaction)."""
        for key, value in counts.items():
            if value:
                cur.execute(self._sql("UPDATE stats SET value = value + ? WHERE key = ?"), (value, key))

    def stats(self) -> dict[str, int]:
        """Every counter over the store's whole life."""
        with self.transaction() as cur:
            cur.execute("SELECT key, value FROM stats")
            return {str(k): int(v) for k, v in cur.fetchall()}

    def count(self) -> int:
        """How many distinct records the store holds."""
        with self.transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM records")
            return int(cur.fetchone()[0])

    def _select(self, filters: Filters, limit: int | None) -> tuple[str, list[Any]]:
        """The SELECT of the rows matching ``filters`` in device sequence order, and its parameters."""
        where, params = [], []
        for column, value in (
            ("tracking_number", filters.tracking_number),
            ("device_id", filters.device_id),
            ("verdict", filters.verdict),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if filters.kinds is not None:
            where.append(f"kind IN ({marks(len(filters.kinds))})" if filters.kinds else "1 = 0")
            params.extend(filters.kinds)
        if filters.since is not None:
            where.append("created_at >= ?")
            params.append(filters.since)
        if filters.until is not None:
            where.append("created_at < ?")
            params.append(filters.until)
        sql = f"SELECT {', '.join(COLUMNS)} FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY site_id, device_id, seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._sql(sql), params

    def query(self, filters: Filters, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored rows matching ``filters``, in device sequence order, as column dicts."""
        sql, params = self._select(filters, limit)
        with self.transaction() as cur:
            cur.execute(sql, params)
            return [dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()]

    @contextlib.contextmanager
    def stream(self, filters: Filters, *, chunk: int = 500) -> Iterator[Iterator[dict[str, Any]]]:
        """The rows :meth:`query` would return, read ``chunk`` at a time while they are consumed.

        Why: a report over a store of millions of records must not hold them all at once. The
        rows come from one read (a consistent snapshot) that takes no write turn, so receivers
        keep committing meanwhile. This store object is busy until the block ends: call nothing
        else on it inside (another thread waits; the same thread would deadlock).
        """
        sql, params = self._select(filters, None)
        with self._reading() as cur:
            cur.execute(sql, params)

            def rows() -> Iterator[dict[str, Any]]:
                while batch := cur.fetchmany(chunk):
                    yield from (dict(zip(COLUMNS, row, strict=True)) for row in batch)

            yield rows()

    @abc.abstractmethod
    def _reading(self) -> contextlib.AbstractContextManager[Reader]:
        """A cursor for one long read, released at the end of the block."""

    def gaps(self) -> list[dict[str, Any]]:
        """Missing sequence ranges per device: records a station made that never arrived.

        Each gap is ``{"site_id", "device_id", "first_missing", "last_missing", "missing"}``;
        a device whose first stored record has seq > 1 has a gap from 1.
        """
        sql = (
            "SELECT site_id, device_id, prev + 1, seq - 1 FROM ("
            " SELECT site_id, device_id, seq,"
            " COALESCE(LAG(seq) OVER (PARTITION BY site_id, device_id ORDER BY seq), 0) AS prev"
            " FROM records) AS ordered WHERE seq - prev > 1 ORDER BY site_id, device_id, prev"
        )
        with self.transaction() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        return [
            {
                "site_id": site,
                "device_id": device,
                "first_missing": int(first),
                "last_missing": int(last),
                "missing": int(last) - int(first) + 1,
            }
            for site, device, first, last in rows
        ]

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""


class SqliteStore(Store):
    """One SQLite file in WAL mode with ``synchronous=FULL``, like the outbox.

    Several receiver processes may share it (``receiver --workers N``): their transactions take
    turns on a lock file beside it (``flock``), which hands over at once, where SQLite's own busy
    handler would sleep 1-100 ms between retries.
    """

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._turns = os.open(private(f"{path}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        # Receivers starting together (--workers) open the file one at a time: two creating it at
        # once could fail switching it to WAL ("database is locked", which no busy wait retries).
        with self._turn():
            # Checkpoints run on their own thread: no batch group's commit pays for one (core.db).
            self.conn = connect_durable(path, autocheckpoint=False, page_size=PAGE_SIZE)
        self._setup()
        self._checkpointer = Checkpointer(path).start()

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn on the store among the receivers sharing it (the lock file)."""
        fcntl.flock(self._turns, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._turns, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._lock, self._turn(), immediate(self.conn) as cur:
            yield cur

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Reader]:
        """A plain cursor: in WAL mode a reader blocks no writer, so it takes no commit turn."""
        with self._lock:
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def close(self) -> None:
        """Release the connection and the commit-turn lock file; closing twice is harmless (a
        receiver's stop and its owner's cleanup may both close it)."""
        self._checkpointer.close()
        with self._lock:
            self.conn.close()
            if self._turns >= 0:
                os.close(self._turns)
                self._turns = -1


class PostgresStore(Store):
    """A PostgreSQL database several receivers can share (psycopg 3)."""

    placeholder = "%s"
    lock_row = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # the optional extra was not installed
            raise ConfigError(
                "a postgresql:// store needs psycopg: pip install 'prescreen-agent[postgres]'"
            ) from exc
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot connect to {url.rsplit('@', maxsplit=1)[-1]}: {exc}") from exc
        self._lock = threading.Lock()
        self._setup()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._lock, self.conn.transaction(), self.conn.cursor() as cur:
            yield cur

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Reader]:
        """A server-side cursor (it lives in a transaction): the server sends rows as fetched."""
        with self._lock, self.conn.transaction(), self.conn.cursor(name="prescreen_stream") as cur:
            yield cur

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def open_store(where: str | Path) -> Store:
    """A store from a path (SQLite) or a ``postgresql://`` URL."""
    text = str(where)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresStore(text)
    return SqliteStore(where)
