"""The receiver's store: gaps, queries and exports on SQLite, and PostgreSQL shared by two receivers."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from prescreen.core.errors import ConfigError
from prescreen.core.records import dumps, validate
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.core.wire import encode_batch
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sync.broker import LocalBroker
from prescreen.sync.receiver import Receiver
from prescreen.sync.store import (
    PAGE_SIZE,
    STORE_VERSION,
    Filters,
    PostgresStore,
    SqliteStore,
    Store,
    open_store,
)
from prescreen.sync.uplink import Uplink
from record_fixtures import record


def _store_rows(store: Store, rows: list[tuple[str, int, str]]) -> None:
    """(device, seq, verdict) rows straight into the store, as a receiver would insert them."""
    values = []
    for device, seq, verdict in rows:
        body = record(seq, device)
        body["screening"]["verdict"] = verdict
        values.append(
            (
                body["record_id"],
                device,
                "site-a",
                seq,
                "verdict",
                verdict,
                f"TRK-{device}-{seq}",
                body["created_at"],
                body["created_at"],
                dumps(body),
                body["schema"],
            )
        )
    with store.transaction() as cur:
        assert store.insert_many(cur, values) == len(values)
        assert store.insert_many(cur, values[:1]) == 0  # stored already


def _check_gaps_and_queries(store: Store) -> None:
    _store_rows(
        store,
        [("dev-1", s, "CLEAR") for s in (1, 2, 5, 6, 9)] + [("dev-2", s, "HOLD") for s in (3, 4)],
    )
    assert store.gaps() == [
        {"site_id": "site-a", "device_id": "dev-1", "first_missing": 3, "last_missing": 4, "missing": 2},
        {"site_id": "site-a", "device_id": "dev-1", "first_missing": 7, "last_missing": 8, "missing": 2},
        {"site_id": "site-a", "device_id": "dev-2", "first_missing": 1, "last_missing": 2, "missing": 2},
    ]
    assert [r["seq"] for r in store.query(Filters(device_id="dev-1"))] == [1, 2, 5, 6, 9]
    assert [r["seq"] for r in store.query(Filters(verdict="HOLD"))] == [3, 4]
    assert [r["device_id"] for r in store.query(Filters(tracking_number="TRK-dev-2-4"))] == ["dev-2"]
    assert store.query(Filters(since="2999-01-01T00:00:00Z")) == []
    assert len(store.query(Filters(), limit=3)) == 3


def test_sqlite_store_reports_gaps_per_device_and_filters_queries(tmp_path: Path) -> None:
    store = open_store(tmp_path / "rx.db")
    assert isinstance(store, SqliteStore)
    try:
        _check_gaps_and_queries(store)
    finally:
        store.close()


def test_a_new_sqlite_store_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """A store this receiver creates has PAGE_SIZE pages, its WAL fallback checkpoint the same
    16,000 KiB in fewer pages; one made before keeps 4 KiB pages and works as before."""
    new = open_store(tmp_path / "rx.db")
    assert isinstance(new, SqliteStore)
    try:
        assert PAGE_SIZE == 16384
        assert new.conn.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)
        assert new.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
        _check_gaps_and_queries(new)
    finally:
        new.close()
    old_path = tmp_path / "old.db"
    with sqlite3.connect(old_path) as made_before:
        made_before.execute("CREATE TABLE t (a)")  # a file made with SQLite's default page size
    old = open_store(old_path)
    assert isinstance(old, SqliteStore)
    try:
        assert old.conn.execute("PRAGMA page_size").fetchone() == (4096,)
        assert old.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (4000,)
        _check_gaps_and_queries(old)
    finally:
        old.close()


def test_postgres_store_gives_the_same_answers_as_sqlite(pg_url: str) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        _check_gaps_and_queries(store)
    finally:
        store.close()


@pytest.mark.slow
def test_two_receivers_share_the_load_through_one_postgres_and_store_nothing_twice(
    tmp_path: Path, broker: LocalBroker, pg_url: str, wait_until: Callable[..., bool]
) -> None:
    station = StationConfig(device_id="dev-1", site_id="site-a")
    key = DeviceKey.load_or_create(tmp_path / "device.key")
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    outbox = Outbox(tmp_path / "outbox.db", signer=key)
    outbox.append_many([record] * 2000)
    receivers = [
        Receiver(pg_url, trust=trust, host=broker.host, port=broker.port, prefix="pg/v1", shared=True).start()
        for _ in range(2)
    ]
    for receiver in receivers:
        assert receiver.mqtt.subscribed.wait(5)
    sync = SyncConfig(
        host=broker.host, port=broker.port, topic_prefix="pg/v1", batch_size=50, inflight_batches=8
    )
    uplink = Uplink(Outbox(outbox.path), sync, station).start()
    try:
        assert wait_until(lambda: outbox.counts() == {"acked": 2000}, 30)
        # Duplicate deliveries: every batch published again, straight to the shared subscription.
        bodies = [dumps(r) for r in outbox.records()]
        for start in range(0, len(bodies), 100):
            uplink.mqtt.publish(
                "pg/v1/site-a/dev-1/records",
                encode_batch(f"dup-{start}", "dev-1", bodies[start : start + 100]),
            )
        assert wait_until(lambda: sum(r.duplicates for r in receivers) >= 2000, 15)
    finally:
        uplink.stop()
    try:
        assert all(r.stored > 0 for r in receivers), "the shared subscription gave one receiver everything"
        assert sum(r.stored for r in receivers) == 2000
        store = receivers[0].store
        assert store.count() == 2000
        stats = store.stats()
        assert (stats["stored"], stats["duplicates"], stats["rejected"]) == (2000, 2000, 0)
        assert store.gaps() == []
    finally:
        for receiver in receivers:
            receiver.stop()


def test_records_cli_exports_queries_and_reports_gaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prescreen.commands.main import main

    store = open_store(tmp_path / "rx.db")
    _store_rows(store, [("dev-1", 1, "CLEAR"), ("dev-1", 2, "HOLD"), ("dev-1", 4, "HOLD")])
    store.close()
    db = str(tmp_path / "rx.db")
    assert main(["records", "query", "--db", db, "--verdict", "HOLD"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [2, 4]
    assert main(["records", "export", "--db", db, "--format", "csv", "--device", "dev-1"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("record_id,kind,site_id,device_id,seq")
    assert len(rows) == 4
    assert main(["records", "gaps", "--db", db, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["gaps"][0]["first_missing"] == 3
    # mapped for a filer: these records carry no order, so every parcel is refused, by name
    assert main(["records", "export", "--db", db, "--format", "us-informal"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("entry_type,preclearance_record_id,")
    assert len(captured.out.splitlines()) == 1
    assert captured.err.count("prescreen: refused 1Z5R89390357567127") == 3
    assert main(["records", "export", "--db", db, "--format", "us-informal", "--allow-incomplete"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


FIXTURES = Path(__file__).parents[1] / "fixtures"
# The receiver store's tables exactly as a v1 receiver created them (receiver-v1.db was written by
# that receiver: 8 records of the outbox-v1.db fixture), for the PostgreSQL upgrade test.
_V1_TABLES = (
    "CREATE TABLE records (record_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, site_id TEXT NOT NULL, "
    "seq BIGINT NOT NULL, kind TEXT NOT NULL, verdict TEXT, tracking_number TEXT, created_at TEXT NOT NULL, "
    "received_at TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE stats (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
)


def _v1_rows() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with sqlite3.connect(FIXTURES / "receiver-v1.db") as conn:
        records = conn.execute(
            "SELECT record_id, device_id, site_id, seq, kind, verdict, tracking_number, created_at, "
            "received_at, body FROM records ORDER BY seq"
        ).fetchall()
        stats = conn.execute("SELECT key, value FROM stats").fetchall()
    return records, stats


def _check_upgraded(store: Store, v1_records: list[tuple[object, ...]], v1_stats: dict[str, int]) -> None:
    assert store.schema_version() == STORE_VERSION == 3
    rows = store.query(Filters())
    assert [(r["record_id"], r["body"]) for r in rows] == [(r[0], r[9]) for r in v1_records]  # nothing lost
    assert {r["record_schema"] for r in rows} == {"prescreen.record/v1"}
    for row in rows:
        validate(json.loads(row["body"]))  # still valid against the schema they name
    assert {k: v for k, v in store.stats().items() if k in v1_stats} == v1_stats
    new = record(9, "station-07")
    new["site_id"] = "site-01"
    assert new["schema"] == "prescreen.record/v2"
    with store.transaction() as cur:
        assert (
            store.insert_many(
                cur,
                [
                    (
                        new["record_id"],
                        "station-07",
                        "site-01",
                        9,
                        "verdict",
                        "CLEAR",
                        None,
                        new["created_at"],
                        new["created_at"],
                        dumps(new),
                        new["schema"],
                    )
                ],
            )
            == 1
        )
    assert [r["record_schema"] for r in store.query(Filters(device_id="station-07"))][-1] == new["schema"]


def test_a_v1_sqlite_receiver_store_upgrades_with_nothing_lost(tmp_path: Path) -> None:
    v1_records, v1_stats = _v1_rows()
    db = tmp_path / "receiver.db"
    shutil.copy(FIXTURES / "receiver-v1.db", db)
    store = open_store(db)
    try:
        _check_upgraded(store, v1_records, dict(v1_stats))
    finally:
        store.close()
    reopened = open_store(db)  # a second start migrates nothing again
    try:
        assert reopened.schema_version() == STORE_VERSION
        assert reopened.count() == len(v1_records) + 1
    finally:
        reopened.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE store_meta SET value = '9' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match="newer than this receiver"):
        open_store(db)


def test_a_v1_postgres_receiver_store_upgrades_with_nothing_lost(pg_url: str) -> None:
    import psycopg

    v1_records, v1_stats = _v1_rows()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in _V1_TABLES:
            conn.execute(statement)
        for row in v1_records:
            conn.execute(f"INSERT INTO records VALUES ({', '.join(['%s'] * 10)})", row)
        for key, value in v1_stats:
            conn.execute("INSERT INTO stats VALUES (%s, %s)", (key, value))
    store = open_store(pg_url)
    try:
        _check_upgraded(store, v1_records, dict(v1_stats))
    finally:
        store.close()


@pytest.mark.slow
def test_where_the_machine_has_no_postgres_the_suite_starts_its_own() -> None:
    """The fallback of the ``postgres_server`` fixture, exercised even where 5432 answers."""
    import postgres

    server, why_not = postgres.start_private()
    if server is None:
        pytest.skip(f"cannot start a PostgreSQL server here: {why_not}")
    try:
        assert postgres.reachable(server.admin_url) is None
        store = open_store(server.admin_url)
        assert isinstance(store, PostgresStore)
        assert store.count() == 0
        store.close()
    finally:
        server.stop()
    assert postgres.reachable(server.admin_url) is not None  # stopped, and its files are gone
    assert server.data_dir is not None
    assert not server.data_dir.exists()


# Processes opening one new store at the same moment, round after round (a barrier each round).
_OPEN_TOGETHER = """
import multiprocessing, sys
from pathlib import Path

def opener(barrier, folder, rounds, failures):
    from prescreen.sync.store import open_store
    for number in range(rounds):
        barrier.wait()
        try:
            open_store(Path(folder) / f"store-{number}.db").close()
        except Exception as exc:
            failures.put(repr(exc))

if __name__ == "__main__":
    folder, processes, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    barrier, failures = multiprocessing.Barrier(processes), multiprocessing.Queue()
    openers = [
        multiprocessing.Process(target=opener, args=(barrier, folder, rounds, failures))
        for _ in range(processes)
    ]
    for process in openers:
        process.start()
    for process in openers:
        process.join()
    failed = []
    while not failures.empty():
        failed.append(failures.get())
    print(len(failed), failed[:3])
"""


def test_receiver_workers_creating_one_new_store_together_all_open_it(tmp_path: Path) -> None:
    """``--workers`` start together on a store that does not exist yet. Switching a new file to WAL
    mode is not retried by SQLite's busy wait: without the lock file around it, ~1 % of such opens
    failed with "database is locked" (3 of 240 here), so this makes 360."""
    script = tmp_path / "open_together.py"
    script.write_text(_OPEN_TOGETHER)
    found = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "6", "60"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert found.stdout.split(maxsplit=1)[0] == "0", found.stdout
    for number in range(60):
        with sqlite3.connect(tmp_path / f"store-{number}.db") as conn:
            assert conn.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)
