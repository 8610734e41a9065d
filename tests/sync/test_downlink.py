"""Downlink from the customs side through the real broker to a whole simulated station."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from prescreen.drivers.barcodes import decode
from prescreen.packing.downlink_journal import attach
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.customs import new_message
from prescreen.sync.store import Filters


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoStation, list[Step]]]:
    orders, steps = generate(40, seed=7)
    station = DemoStation(tmp_path_factory.mktemp("downlink"), orders)
    try:
        yield station, [s for s in steps if s.kind == "parcel" and decode(s.payload).tracking_number]
    finally:
        station.close()


def _scan(station: DemoStation, steps: list[Step], verdict: str | None = None) -> dict[str, Any]:
    while steps:
        event, _ = station.run(steps.pop(0))
        if event.record is not None and verdict in (None, event.record["screening"]["verdict"]):
            return event.record
    raise AssertionError(f"no {verdict} parcel left")


def _ack(station: DemoStation, message: dict[str, Any]) -> dict[str, Any]:
    ack = station.send(message)
    assert ack is not None, "no ack"
    return ack


def _downlink_records(station: DemoStation, message_id: str) -> list[dict[str, Any]]:
    assert station.agent is not None
    return [
        r
        for r in station.agent.outbox.records()
        if r["kind"] == "downlink" and r["downlink"]["message_id"] == message_id
    ]


def test_a_hold_before_the_scan_turns_the_verdict_into_hold(bench: tuple[DemoStation, list[Step]]) -> None:
    station, steps = bench
    step = next(s for s in steps if s.label == "clean")
    steps.remove(step)
    tracking = decode(step.payload).tracking_number
    ack = station.send(new_message("dnl", tracking_number=tracking, reason="imminent threat"))
    assert ack is not None
    assert ack["status"] == "applied"
    assert ack["parcel_state"] == {"scanned": False, "on_hold_shelf": False, "outcomes": []}
    event, confirmation = station.run(step)
    assert event.record is not None
    assert event.record["screening"]["verdict"] == "HOLD"
    reasons = {r["code"]: r["message"] for r in event.record["screening"]["reasons"]}
    assert "DNL: imminent threat" in reasons["WATCHLIST_HOLD"]
    assert confirmation is not None  # the HOLD went onto the shelf like any other


def test_a_late_hold_is_reported_with_the_parcels_state(bench: tuple[DemoStation, list[Step]]) -> None:
    station, steps = bench
    record = _scan(station, steps, "CLEAR")
    tracking = record["parcel"]["tracking_number"]
    message = new_message("rfs", tracking_number=tracking)
    ack = station.send(message)
    assert ack is not None
    assert ack["parcel_state"]["scanned"] is True
    assert ack["parcel_state"]["verdict"] == "CLEAR"
    assert ack["parcel_state"]["verdict_record_id"] == record["record_id"]
    assert ack["parcel_state"]["on_hold_shelf"] is False
    (effect,) = _downlink_records(station, message["message_id"])
    assert effect["record_id"] == ack["record_id"]
    assert "already scanned" in effect["downlink"]["effect"]
    station.drain()
    stored = station.receiver.store.query(Filters(tracking_number=tracking))
    assert ack["record_id"] in {row["record_id"] for row in stored}


def test_a_redelivered_message_is_acked_again_but_applied_once(bench: tuple[DemoStation, list[Step]]) -> None:
    station, _ = bench
    message = new_message("watchlist", add=["1ZWATCH0000000001"], reason="seller under investigation")
    first = station.send(message)
    second = station.send(message)
    assert first == second
    assert len(_downlink_records(station, message["message_id"])) == 1
    assert station.agent is not None
    assert "1ZWATCH0000000001" in station.agent.station.holds


def test_release_and_watchlist_removal_lift_holds(bench: tuple[DemoStation, list[Step]]) -> None:
    station, steps = bench
    assert station.agent is not None
    holds = station.agent.station.holds
    station.send(new_message("hold", tracking_number="1ZLIFT00000000001"))
    station.send(new_message("watchlist", add=["1ZLIFT00000000002"]))
    assert {"1ZLIFT00000000001", "1ZLIFT00000000002"} <= set(holds)
    station.send(new_message("release", tracking_number="1ZLIFT00000000001"))
    station.send(new_message("watchlist", remove=["1ZLIFT00000000002"]))
    assert not {"1ZLIFT00000000001", "1ZLIFT00000000002"} & set(holds)
    rows = station.agent.outbox.rows("SELECT tracking_number FROM holds WHERE tracking_number LIKE '1ZLIFT%'")
    assert rows == []
    # Releasing a parcel already scanned is no alarm for the operator (only a late hold is).
    scanned = _scan(station, steps)["parcel"]["tracking_number"]
    kinds: list[str] = []
    station.agent.station.listeners.append(lambda event: kinds.append(event.kind))
    station.send(new_message("release", tracking_number=scanned))
    assert kinds == ["downlink"]


def test_bad_messages_are_rejected_with_a_record_or_ignored_with_a_log_line(
    bench: tuple[DemoStation, list[Step]], caplog: pytest.LogCaptureFixture
) -> None:
    station, _ = bench
    message = new_message("rfi")  # no tracking number
    ack = station.send(message)
    assert ack is not None
    assert ack["status"] == "rejected"
    assert "tracking_number" in ack["detail"]
    (effect,) = _downlink_records(station, message["message_id"])
    assert effect["downlink"]["status"] == "rejected"
    assert _ack(station, new_message("config", settings={"model_path": "/tmp/x"}))["status"] == "rejected"
    assert _ack(station, new_message("feedback", text="no target"))["status"] == "rejected"
    assert station.agent is not None
    downlink = station.agent.downlink
    before = downlink.rejected
    downlink.on_message("t", b"{not json")
    downlink.on_message("t", json.dumps({"message_id": "x", "type": "launch"}).encode())
    assert downlink.rejected == before + 2
    assert "downlink message rejected" in caplog.text


def test_config_changes_screening_and_survives_a_restart(bench: tuple[DemoStation, list[Step]]) -> None:
    station, _ = bench
    assert station.agent is not None
    agent = station.agent
    ack = station.send(new_message("config", settings={"review_score": 0.3, "split_max_parcels": 5}))
    assert ack is not None
    assert ack["status"] == "applied"
    assert agent.station.screener.config.review_score == 0.3
    assert agent.station.screener.config.split_max_parcels == 5
    assert agent.station.screener.model is not None  # the model stays loaded
    original = agent.station.screener
    agent.station.screener = type(original)(agent.config.screening, original.model)  # as after a restart
    attach(agent.station, agent.uplink.mqtt, agent.config.sync)  # loads saved state
    assert agent.station.screener.config.review_score == 0.3


def test_holds_survive_a_restart(bench: tuple[DemoStation, list[Step]]) -> None:
    station, _ = bench
    assert station.agent is not None
    agent = station.agent
    station.send(new_message("rfi", tracking_number="1ZKEEP00000000001", reason="invoice please"))
    agent.station.holds.clear()  # as after a restart
    attach(agent.station, agent.uplink.mqtt, agent.config.sync)
    assert agent.station.holds["1ZKEEP00000000001"] == "RFI: invoice please"


def test_feedback_is_stored_for_the_scorecard(bench: tuple[DemoStation, list[Step]]) -> None:
    station, steps = bench
    record = _scan(station, steps)
    ack = station.send(
        new_message("feedback", record_id=record["record_id"], text="tariff code corrected to 8518.30.20")
    )
    assert ack is not None
    assert ack["status"] == "applied"
    assert station.agent is not None
    assert {
        "record_id": record["record_id"],
        "seller": None,
        "text": "tariff code corrected to 8518.30.20",
    } in (station.agent.outbox.feedback())
