"""One record per device sequence number, enforced by the store (UNIQUE (site_id, device_id, seq)):
receivers sharing a store check "seq already taken" before they insert, and two of them can both
pass that check; the loser's record is then rejected as replayed, not stored beside the winner's."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from prescreen.core.errors import ConfigError
from prescreen.core.records import dumps
from prescreen.core.wire import encode_batch
from prescreen.sync.receiver import Receiver
from prescreen.sync.store import STORE_VERSION, Filters, Store, open_store
from record_fixtures import record, store_row


def _row(seq: int, record_id: str) -> tuple[object, ...]:
    return store_row(seq, record_id)


def test_two_sqlite_handles_store_one_record_per_seq(tmp_path: Path) -> None:
    first, second = open_store(tmp_path / "rx.db"), open_store(tmp_path / "rx.db")
    try:
        with first.transaction() as cur:
            assert first.insert_many(cur, [_row(5, "rec-5")]) == 1
        with second.transaction() as cur:
            assert second.insert_many(cur, [_row(5, "rec-5-clone")]) == 0  # refused, not raised
            assert second.seq_owners(cur, "site-a", "dev-1", [5]) == {5: "rec-5"}
        assert second.count() == 1
    finally:
        first.close()
        second.close()


def _raw(where: str, sql: str) -> list[tuple[object, ...]]:
    """``sql`` on the store's database directly (the store itself refuses to open)."""
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn:
            cursor = conn.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []
    with sqlite3.connect(where) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_holding_a_seq_twice_is_not_upgraded_and_is_named(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    where = str(tmp_path / "rx.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    open_store(where).close()
    for sql in (  # as a v2 store could be: a plain index, a replay stored
        "DROP INDEX records_device_seq",
        "CREATE INDEX records_device_seq ON records (site_id, device_id, seq)",
        "INSERT INTO records VALUES ('a', 'dev-1', 'site-a', 5, 'verdict', NULL, NULL, 't', 't', '{}', 'v2')",
        "INSERT INTO records VALUES ('b', 'dev-1', 'site-a', 5, 'verdict', NULL, NULL, 't', 't', '{}', 'v2')",
        "UPDATE store_meta SET value = '2' WHERE key = 'schema_version'",
    ):
        _raw(where, sql)
    with pytest.raises(ConfigError, match=r"1 sequence numbers .* site-a/dev-1 seq 5 \(2 records\)"):
        open_store(where)
    # nothing changed: still v2, both rows kept for a person to look at
    assert _raw(where, "SELECT value FROM store_meta WHERE key = 'schema_version'") == [("2",)]
    assert _raw(where, "SELECT COUNT(*) FROM records") == [(2,)]
    _raw(where, "DELETE FROM records WHERE record_id = 'b'")
    store = open_store(where)  # once resolved, the upgrade goes through
    try:
        assert store.schema_version() == STORE_VERSION
        with store.transaction() as cur:
            assert store.insert_many(cur, [_row(5, "c")]) == 0
    finally:
        store.close()


def _blocked_on_a_lock(url: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_two_receivers_racing_one_seq_on_postgres_store_one(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The other receiver's insert of seq 5 is not committed when this one checks seq 5 (so the check
    passes), and is committed while this one's insert waits on the index: the race, made certain."""
    other: Store = open_store(pg_url)
    receiver = Receiver(pg_url, port=1, prefix="race/v1")  # the broker is not needed: acks are logged
    done: list[bool] = []
    try:
        with caplog.at_level(logging.WARNING, logger="prescreen.receiver"):
            with other.transaction() as cur:
                other.insert_many(cur, [_row(5, "rec-5")])
                fourth, clone = record(4), record(5)  # a cloned outbox: seq 5 again under a new record id
                payload = encode_batch("b1", "dev-1", [dumps(fourth), dumps(clone)])
                worker = threading.Thread(
                    target=lambda: done.append(receiver.handle("race/v1/site-a/dev-1/records", payload))
                )
                worker.start()
                deadline = time.monotonic() + 30
                while not _blocked_on_a_lock(pg_url) and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert _blocked_on_a_lock(pg_url), "the receiver's insert waits for the other's commit"
            worker.join(30)
        assert done == [True]  # committed and acked: the lost race is one rejected record, not a failed batch
        owners = [(row["seq"], row["record_id"]) for row in receiver.store.query(Filters())]
        assert owners == [(4, fourth["record_id"]), (5, "rec-5")]
        stats = receiver.store.stats()
        assert (stats["stored"], stats["rejected_replayed"], stats["duplicates"]) == (1, 1, 0)
        rejected = [r for r in caplog.records if r.getMessage() == "record rejected"]
        assert [(r.__dict__["why"], r.__dict__["record_id"]) for r in rejected] == [
            ("replayed", clone["record_id"])
        ]
    finally:
        receiver.store.close()
        other.close()
