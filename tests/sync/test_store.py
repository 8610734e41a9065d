"""The receiver's store: gaps, queries and exports on SQLite, and PostgreSQL shared by two receivers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prescreen.config import StationConfig, SyncConfig
from prescreen.outbox import Outbox
from prescreen.records import dumps
from prescreen.signing import DeviceKey, TrustStore
from prescreen.sync.broker import LocalBroker
from prescreen.sync.receiver import Receiver
from prescreen.sync.store import Filters, PostgresStore, SqliteStore, Store, open_store
from prescreen.sync.uplink import Uplink, batch_payload
from record_fixtures import record

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database on this machine's server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"prescreen_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432: {exc}")
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_postgres_store_gives_the_same_answers_as_sqlite(pg_url: str) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        _check_gaps_and_queries(store)
    finally:
        store.close()


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
    uplink = Uplink(outbox.path, sync, station).start()
    try:
        assert wait_until(lambda: outbox.counts() == {"acked": 2000}, 30)
        # Duplicate deliveries: every batch published again, straight to the shared subscription.
        bodies = [dumps(r) for r in outbox.records()]
        for start in range(0, len(bodies), 100):
            uplink.mqtt.publish(
                "pg/v1/site-a/dev-1/records",
                batch_payload(f"dup-{start}", "dev-1", bodies[start : start + 100]),
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
    from prescreen.cli import main

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
