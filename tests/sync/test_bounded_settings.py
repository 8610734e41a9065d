"""Remote settings are bounded like the config file's, and one parcel cannot stop the station.

Through the real broker to a whole simulated station (pty devices, SQLite outbox, receiver).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from prescreen.drivers.barcodes import decode
from prescreen.models.signals import ParcelSignals
from prescreen.packing.downlink_journal import attach
from prescreen.risk.screening import Screener
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.customs import new_message
from prescreen.sync.store import Filters


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoStation, list[Step]]]:
    orders, steps = generate(30, seed=11)
    station = DemoStation(tmp_path_factory.mktemp("bounded"), orders)
    try:
        yield station, [s for s in steps if s.kind == "parcel" and decode(s.payload).tracking_number]
    finally:
        station.close()


@pytest.mark.parametrize(
    "settings",
    [
        {"weight_tolerance_pct": float("nan")},  # json.dumps writes NaN; json.loads reads it back
        {"weight_tolerance_pct": 1e9},
        {"weight_tolerance_g": -5},
        {"review_score": 0.9, "hold_score": 0.6},
        {"split_max_parcels": "5"},
    ],
)
def test_bad_remote_settings_are_refused_on_arrival(
    bench: tuple[DemoStation, list[Step]], settings: dict[str, object]
) -> None:
    station, _ = bench
    assert station.agent is not None
    before = station.agent.station.screener.config
    ack = station.send(new_message("config", settings=settings))
    assert ack is not None
    assert ack["status"] == "rejected", ack
    assert "bad setting value" in ack["detail"]
    assert station.agent.station.screener.config == before


def test_a_bad_value_saved_earlier_is_refused_on_load(
    bench: tuple[DemoStation, list[Step]], caplog: pytest.LogCaptureFixture
) -> None:
    """As if an older version had stored NaN: after a restart the configured settings are used."""
    station, _ = bench
    agent = station.agent
    assert agent is not None
    with sqlite3.connect(agent.outbox.path) as db:
        db.execute(
            "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES ('screening', ?, 'x')",
            ('{"weight_tolerance_pct": NaN, "review_score": 0.3}',),
        )
    try:
        agent.station.screener = Screener(agent.config.screening, agent.station.screener.model)
        attach(agent.station, agent.uplink.mqtt, agent.config.sync)  # loads saved state
        assert agent.station.screener.config == agent.config.screening
        assert "saved screening settings refused" in caplog.text
    finally:
        with sqlite3.connect(agent.outbox.path) as db:
            db.execute("DELETE FROM settings WHERE key = 'screening'")


class _BrokenModel:
    """A model whose interpreter fails on every parcel (as a corrupted TFLite delegate would)."""

    version = "broken"

    def score_signals(self, signals: ParcelSignals) -> float:
        raise RuntimeError("interpreter exploded")

    def threshold_for(self, budget: float) -> float:
        return 0.5

    def expected_raise_rate(self, threshold: float) -> float:
        return 0.01


def test_a_parcel_that_fails_screening_is_committed_as_review_and_the_station_goes_on(
    bench: tuple[DemoStation, list[Step]], caplog: pytest.LogCaptureFixture
) -> None:
    station, steps = bench
    agent = station.agent
    assert agent is not None
    working = agent.station.screener
    with_order = [s for s in steps if s.label == "clean"]
    agent.station.screener = Screener(working.config, _BrokenModel())
    try:
        event, _ = station.run(with_order[0])
    finally:
        agent.station.screener = working
    assert event.record is not None
    screening = event.record["screening"]
    assert screening["verdict"] == "REVIEW"
    assert [r["code"] for r in screening["reasons"]] == ["INTERNAL_ERROR"]
    assert "RuntimeError" in screening["reasons"][0]["message"]
    assert "screening failed, parcel sent to review" in caplog.text
    # The station thread is alive: the downlink is applied and the next parcel is screened.
    ack = station.send(new_message("hold", tracking_number="1ZALIVE0000000001"))
    assert ack is not None
    assert ack["status"] == "applied"
    after, _ = station.run(with_order[1])
    assert after.record is not None
    assert after.record["screening"]["mode"] == "rules+model"
    # The REVIEW reached customs like any verdict.
    station.drain()
    tracking = event.record["parcel"]["tracking_number"]
    stored = station.receiver.store.query(Filters(tracking_number=tracking)) if station.receiver else []
    assert event.record["record_id"] in {row["record_id"] for row in stored}


def test_an_order_source_failing_unexpectedly_sends_the_parcel_to_review(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    station, steps = bench
    agent = station.agent
    assert agent is not None
    orders = agent.station.orders

    class Exploding:
        def lookup(self, key: str) -> dict[str, object]:
            raise KeyError(key)  # not the OrderError the station expects

        def late_orders(self) -> list[tuple[str, dict[str, object]]]:
            return []

    agent.station.orders = Exploding()  # type: ignore[assignment]
    try:
        event, _ = station.run([s for s in steps if s.label == "clean"][2])
    finally:
        agent.station.orders = orders
    assert event.record is not None
    assert event.record["screening"]["verdict"] == "REVIEW"
    assert event.record["screening"]["reasons"][0]["code"] == "INTERNAL_ERROR"
    assert event.record["parcel"]["tracking_number"] is not None  # what is known is kept
    assert agent.outbox.get(event.record["record_id"]) is not None  # committed
