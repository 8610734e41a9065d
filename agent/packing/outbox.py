"""The durable outbox: every record is committed here before anyone is told its verdict.

SQLite in WAL mode with ``synchronous=FULL``: a committed record survives power loss. A record
stays ``pending`` until the receiver's application-level ack for its id arrives; only then is it
``acked`` (and later pruned). The per-device sequence number is assigned inside the same
transaction that stores the record, so sequence numbers have no gaps unless rows are lost.

Where a record stands is kept beside it, not in its row (schema v6): the ``pending`` table holds
the seq of each record still waiting for the receiver, ``acks`` the answer (``acked`` or
``rejected``) and its time. An ack moves a batch's seqs from one narrow table to the other instead
of rewriting each ~900-byte record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from prescreen.core.db import Checkpointer, chunked, immediate, marks, where_in
from prescreen.core.errors import OutboxError
from prescreen.core.files import private
from prescreen.core.records import Record, dumps, join_members, member_texts, utc_now
from prescreen.packing.identity import read_seq
from prescreen.packing.outbox_schema import SET_LAST_ACK, connect, last_ack_at, read_feedback
from prescreen.packing.side_tables import Hold, SideChanges, Statement, side_statements

log = logging.getLogger("prescreen.outbox")
READ_CHUNK = 100  # rows the uplink reads per hold of the outbox: a commit waits for one read
# Seqs the uplink marks per transaction (and hold of the outbox). Moving 500 seqs between the two
# narrow tables holds it about as long as rewriting 100 records did (v5); the transaction's own
# cost (BEGIN, the WAL frames of the commit) then weighs on 500 records instead of 100.
MARK_CHUNK = 500


class Signer(Protocol):
    """Signs a record (:class:`prescreen.core.signing.DeviceKey`)."""

    def sign_text(self, record: Record, known: Mapping[str, str] | None = None) -> str:
        """Set the record's signature; return its canonical text (what is stored and sent), with
        the ``known`` members (already serialised) as part of the record."""
        ...


class Outbox:
    """Thread-safe access to one outbox file (station writes, uplink reads and acks)."""

    def __init__(
        self, path: str | Path, *, signer: Signer | None = None, seq_file: Path | None = None
    ) -> None:
        self.path = Path(path)
        # Records are signed at commit, so the stored body is exactly what the receiver verifies.
        self._signer = signer
        # Checkpoints run on their own thread: no verdict's commit pays for one (core.db).
        self.db = connect(self.path, autocheckpoint=False)
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
        self._checkpointer = Checkpointer(self.path).start()

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
        texts: Sequence[Mapping[str, str]] = (),
    ) -> list[Record]:
        """Group commit: like :meth:`append` for each builder, in one durable transaction.

        For batch work (replays, benchmarks, imports) where one fsync per record would bound the
        rate; either every record is committed or none is. ``also`` gives SQL statements (from the
        built records) committed in the same transaction: a downlink message's effect and its
        record are stored together or not at all. ``texts`` (one per builder, :mod:`replay`'s
        workers): members already serialised, stored and signed with the record the builder
        returns, which comes back without them.
        """
        with self._lock:
            records: list[Record] = []
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for offset, build in enumerate(builds, start=1):
                    record = build(self._last_seq + offset)
                    if record["kind"] in self.shed:
                        raise OutboxError(f"{self.path}: disk at its floor: {record['kind']} record shed")
                    known = texts[offset - 1] if texts else None
                    body = self._body(record, known)
                    self._conn.execute(
                        "INSERT INTO records (seq, record_id, kind, created_at, body, size, "
                        "record_schema) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
                # Every record stored waits for the receiver.
                self._conn.executemany("INSERT INTO pending (seq) VALUES (?)", [(r["seq"],) for r in records])
                for sql, params in also(records) if also is not None else ():
                    self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):  # a closed connection cannot even say
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise OutboxError(f"{self.path}: record not committed: {exc}") from exc
                raise
            self._last_seq += len(records)
            self._keep_seq()
            return records

    def _body(self, record: Record, known: Mapping[str, str] | None) -> str:
        """The stored text of ``record`` (signed when the outbox has a signer) with ``known``."""
        if self._signer is not None:
            return self._signer.sign_text(record, known)
        if known:
            return join_members(
                {**member_texts({k: v for k, v in record.items() if k not in known}), **known}
            )
        return dumps(record)

    def append_with(
        self,
        build: Callable[[int], Record],
        changes: SideChanges,
        answer: Callable[[Record], dict[str, Any]] | None = None,
    ) -> Record:
        """Commit one record and ``changes`` together; with ``changes.message``, also the message's
        ``answer`` (built from the committed record: the ack customs gets, now and on redelivery).

        Raises:
            OutboxError: nothing was committed.
        """

        def also(records: list[Record]) -> list[Statement]:
            now = utc_now()
            statements = side_statements(changes, now)
            if changes.message is not None:
                message_id, kind = changes.message
                ack = json.dumps(answer(records[0]) if answer is not None else {})
                statements.append(
                    (
                        "INSERT INTO downlink (message_id, type, received_at, record_id, ack) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (message_id, kind, now, records[0]["record_id"], ack),
                    )
                )
            return statements

        return self.append_many([build], also=also)[0]

    def answer_of(self, message_id: str) -> str | None:
        """The stored answer (ack JSON) to a downlink message, if it was applied before."""
        found = self.rows("SELECT ack FROM downlink WHERE message_id = ?", (message_id,))
        return str(found[0][0]) if found else None

    def holds(self) -> list[Hold]:
        """Every tracking number customs asked this station to hold."""
        rows = self.rows(
            "SELECT tracking_number, type, reason, message_id FROM holds ORDER BY tracking_number"
        )
        return [Hold(str(t), str(k), r, m) for t, k, r, m in rows]

    def outcomes_of(self, tracking_number: str) -> list[str]:
        """The station's outcomes (``held_on_shelf``, ...) recorded for a tracking number, oldest first."""
        rows = self.rows(
            "SELECT json_extract(body, '$.outcome.outcome') FROM records WHERE kind = 'outcome' "
            "AND json_extract(body, '$.outcome.tracking_number') = ? ORDER BY seq",
            (tracking_number,),
        )
        return [str(o) for (o,) in rows]

    def _keep_seq(self) -> None:
        """Write the last sequence number beside the key (one page-cache write, no fsync: it guards
        against an outbox deleted or emptied by hand, which happens long after the OS wrote it)."""
        if self._seq_fd is not None:
            key_id = getattr(self._signer, "key_id", "unsigned")
            os.pwrite(self._seq_fd, f"{key_id} {self._last_seq:<20}\n".encode(), 0)

    def requeue(self, record_ids: list[str] | None = None) -> int:
        """Put ``rejected`` records (all, or these) back to ``pending`` after an operator's review;
        returns how many. The running uplink picks them up on its next pass."""
        where = "state = 'rejected'"
        if record_ids is not None:
            where += f" AND seq IN (SELECT seq FROM records WHERE record_id IN ({marks(len(record_ids))}))"
        params = tuple(record_ids or ())
        with self._lock, immediate(self._conn) as cur:
            cur.execute(f"INSERT INTO pending (seq) SELECT seq FROM acks WHERE {where}", params)
            cur.execute(f"DELETE FROM acks WHERE {where}", params)
            return cur.rowcount

    def pending(self, limit: int, *, after_seq: int = 0) -> list[tuple[int, str, bytes]]:
        """Up to ``limit`` pending (seq, record_id, body) rows with seq > ``after_seq``, read
        :data:`READ_CHUNK` at a time so a verdict's commit never waits behind a whole batch. The
        body is its stored UTF-8 bytes, as a batch carries it (no decoding and encoding again)."""
        rows: list[tuple[int, str, bytes]] = []
        while len(rows) < limit:
            want = min(READ_CHUNK, limit - len(rows))
            with self._lock:
                found: list[tuple[int, str, bytes]] = self._conn.execute(
                    "SELECT p.seq, r.record_id, CAST(r.body AS BLOB) FROM pending p "
                    "JOIN records r ON r.seq = p.seq "
                    "WHERE p.seq > ? ORDER BY p.seq LIMIT ?",
                    (after_seq, want),
                ).fetchall()
            rows += found
            if len(found) < want:
                break
            after_seq = rows[-1][0]
        return rows

    def mark_acked(self, record_ids: Iterable[str], *, state: str = "acked") -> int:
        """Mark pending records answered by the receiver (``acked``, or ``rejected``); returns how
        many were pending."""
        where = "seq IN (SELECT seq FROM records WHERE record_id IN ({}))"
        chunks = chunked(list(record_ids), MARK_CHUNK)
        return self._mark([(where.format(marks(len(c))), (*c,)) for c in chunks], state)

    def mark_acked_seqs(self, seqs: Iterable[int], *, state: str = "acked") -> int:
        """Like :meth:`mark_acked` by sequence number (what the uplink has: no lookup by id)."""
        return self._mark([where_in("seq", c) for c in chunked(sorted(set(seqs)), MARK_CHUNK)], state)

    def _mark(self, chunks: list[tuple[str, tuple[Any, ...]]], state: str) -> int:
        """Move the seqs each chunk's ``(where, params)`` selects from ``pending`` to ``acks``, one
        short transaction per chunk, letting go of the outbox between them: a verdict's commit
        waits for one chunk, not for a whole ack (before v6 a 500-record ack held it for 6-12 ms on
        the loaded bench machine: a p99 of 25-34 ms while draining a backlog)."""
        now = utc_now()
        changed = 0
        for where, params in chunks:
            with self._lock:
                # An ack mark needs no fsync of its own: if a power cut takes it back, the record
                # is pending again, is re-sent and the receiver dedupes it. The next record commit
                # (FULL) makes it durable anyway. Without its fsync it holds the lock far less.
                self._conn.execute("PRAGMA synchronous=NORMAL")
                try:
                    with immediate(self._conn) as cur:
                        cur.execute(
                            f"INSERT INTO acks (seq, state, acked_at) SELECT seq, ?, ? FROM pending "
                            f"WHERE {where}",
                            (state, now, *params),
                        )
                        moved = cur.execute(f"DELETE FROM pending WHERE {where}", params).rowcount
                        if moved:
                            cur.execute(SET_LAST_ACK, (now,))
                        changed += moved
                except sqlite3.Error as exc:
                    raise OutboxError(f"{self.path}: ack not recorded: {exc}") from exc
                finally:
                    self._conn.execute("PRAGMA synchronous=FULL")
        return changed

    def counts(self) -> dict[str, int]:
        """Records by state, e.g. ``{"pending": 3, "acked": 120}`` (no key for a state no record is in)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT 'pending', COUNT(*) FROM pending "
                "UNION ALL SELECT state, COUNT(*) FROM acks GROUP BY state"
            ).fetchall()
        return {state: count for state, count in rows if count}

    def backlog(self) -> dict[str, Any]:
        """Pending count, the oldest pending record's creation time and the last ack time.

        The oldest is the first pending seq's: ``created_at`` is stamped inside the transaction
        that gives a record its seq, so seq order is creation order. The status calls this every
        2 s with the outbox held; a MIN over every pending row took 73-105 ms for a 100,000-record
        backlog here, while every verdict's commit waited.
        """
        with self._lock:
            (pending,) = self._conn.execute("SELECT COUNT(*) FROM pending").fetchone()
            first = self._conn.execute(
                "SELECT r.created_at FROM pending p JOIN records r ON r.seq = p.seq ORDER BY p.seq LIMIT 1"
            ).fetchone()
            last_ack = last_ack_at(self._conn)
        return {"pending": pending, "oldest_pending_at": first[0] if first else None, "last_ack_at": last_ack}

    def get(self, record_id: str) -> Record | None:
        """The stored record with this id, if the outbox still holds it."""
        with self._lock:
            row = self._conn.execute("SELECT body FROM records WHERE record_id = ?", (record_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def latest_verdict(self, tracking_number: str) -> Record | None:
        """The newest verdict record for a tracking number (a scan over the bodies: for
        compliance actions, not for the hot path)."""
        return self._latest(
            "kind = 'verdict' AND json_extract(body, '$.parcel.tracking_number') = ?", (tracking_number,)
        )

    def latest_message(self, tracking_number: str, message_type: str) -> Record | None:
        """The ``downlink`` record of the newest applied customs message of ``message_type``
        (``rfi``, ``rfs``, ...) on a tracking number."""
        return self._latest(
            "kind = 'downlink' AND json_extract(body, '$.downlink.tracking_number') = ? "
            "AND json_extract(body, '$.downlink.type') = ? "
            "AND json_extract(body, '$.downlink.status') = 'applied'",
            (tracking_number, message_type),
        )

    def _latest(self, where: str, params: tuple[Any, ...]) -> Record | None:
        with self._lock:
            sql = f"SELECT body FROM records WHERE {where} ORDER BY seq DESC LIMIT 1"
            row = self._conn.execute(sql, params).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def feedback(self) -> list[dict[str, Any]]:
        """Customs feedback messages to the trade, oldest first."""
        with self._lock:
            return read_feedback(self._conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one durable write transaction (for housekeeping)."""
        with self._lock, immediate(self._conn):
            yield self._conn

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

    def sequence(self) -> list[tuple[int, str]]:
        """(seq, record id) of every record held, in seq order: what the delivery check
        (:mod:`prescreen.sync.delivery`) compares the receiver's store with."""
        with self._lock:
            return [
                (int(s), str(r))
                for s, r in self._conn.execute("SELECT seq, record_id FROM records ORDER BY seq")
            ]

    def close(self) -> None:
        """Close the connection; committed records are already on disk."""
        self._checkpointer.close()
        with self._lock:
            self._conn.close()
            if self._seq_fd is not None:
                os.close(self._seq_fd)
                self._seq_fd = None
