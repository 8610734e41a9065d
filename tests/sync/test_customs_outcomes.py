"""Customs outcomes (issue 17) from the customs side through the real broker to a simulated station.

An outcome settles a verdict record: it is applied with a ``downlink`` record naming that verdict
(the receiver's training labels are built from these), acked, never applied twice, and a decision
about a parcel on the hold shelf is told to the operator on the station page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from prescreen.core.records import validate
from prescreen.drivers.barcodes import decode
from prescreen.packing.housekeeping import housekeep
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.customs import new_message
from prescreen.sync.labels import label_rows
from prescreen.sync.store import Filters


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoStation, list[Step]]]:
    orders, steps = generate(60, seed=11)
    station = DemoStation(tmp_path_factory.mktemp("outcomes"), orders)
    try:
        yield station, [s for s in steps if s.kind == "parcel" and decode(s.payload).tracking_number]
    finally:
        station.close()


def _scan(station: DemoStation, steps: list[Step], verdict: str) -> dict[str, Any]:
    while steps:
        event, _ = station.run(steps.pop(0))
        if event.record is not None and event.record["screening"]["verdict"] == verdict:
            return event.record
    raise AssertionError(f"no {verdict} parcel left")


def _outcome(**fields: Any) -> dict[str, Any]:
    return new_message("outcome", **{"reason_code": "R-1", "customs_reference": "CBP-2026-0001", **fields})


def _effect(station: DemoStation, message_id: str) -> dict[str, Any]:
    assert station.agent is not None
    (record,) = [
        r
        for r in station.agent.outbox.records()
        if r["kind"] == "downlink" and r["downlink"]["message_id"] == message_id
    ]
    return record


class PageEvents:
    """The station page's event stream, read over real HTTP like the browser does."""

    def __init__(self, url: str) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()
        assert self.ready.wait(10)

    def _read(self, url: str) -> None:
        with httpx.stream("GET", url + "/events", timeout=30) as response:
            for line in response.iter_lines():
                self.ready.set()
                self.lines.append(line)

    def event(self, name: str, timeout_s: float = 10) -> dict[str, Any]:
        done = threading.Event()
        for _ in range(int(timeout_s * 20)):
            for i, line in enumerate(self.lines):
                if line == f"event: {name}" and i + 1 < len(self.lines):
                    return dict(json.loads(self.lines[i + 1].removeprefix("data: ")))
            done.wait(0.05)
        raise AssertionError(f"no {name} event on the page")


@pytest.mark.slow
def test_a_release_of_a_parcel_on_the_hold_shelf_is_told_to_the_operator(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    station, steps = bench
    assert station.agent is not None
    held = _scan(station, steps, "HOLD")  # station.run puts it on the shelf (a shelf-label scan)
    tracking = held["parcel"]["tracking_number"]
    station.send(new_message("hold", tracking_number=tracking, reason="case opened"))
    assert tracking in station.agent.station.holds
    page = PageEvents(station.url)
    kinds: list[str] = []
    station.agent.station.listeners.append(lambda event: kinds.append(event.kind))
    message = _outcome(tracking_number=tracking, outcome="released", customs_reference="CBP-REL-7")
    ack = station.send(message)
    assert ack is not None
    assert ack["status"] == "applied", ack
    assert ack["parcel_state"]["on_hold_shelf"] is True
    assert "take it off" in ack["detail"]
    record = _effect(station, message["message_id"])
    said = record["downlink"]["customs_outcome"].pop("message")  # customs' signed word, kept as sent
    assert (said["message_id"], said["outcome"], "signature" in said) == (
        message["message_id"],
        "released",
        True,
    )
    assert record["downlink"]["customs_outcome"] == {
        "outcome": "released",
        "reason_code": "R-1",
        "customs_reference": "CBP-REL-7",
        "refers_to": held["record_id"],
    }
    validate(record)
    assert kinds == ["shelf_outcome"]
    assert tracking not in station.agent.station.holds  # the release lifted the customs hold
    shown = page.event("shelf_outcome")
    assert shown["released"] is True
    assert shown["record_id"] == held["record_id"]
    assert "CBP-REL-7" in shown["message"]["en"][0]
    assert "liberado" in shown["message"]["es"][0]
    # A page opened (or reconnected) after the decision shows it too: it is the snapshot's newest.
    assert station.agent.http is not None
    snapshot = httpx.get(station.agent.http.url + "/station/snapshot", timeout=5).json()
    newest = snapshot["recent"][0]
    assert (newest["kind"], newest["released"]) == ("shelf_outcome", True)
    assert newest["record_id"] == held["record_id"]
    assert newest["message"] == shown["message"]
    assert [v["record_id"] for v in snapshot["recent"]].count(held["record_id"]) == 1
    station.drain()
    stored = station.receiver.store.query(Filters(tracking_number=tracking))
    assert record["record_id"] in {row["record_id"] for row in stored}


def test_a_seizure_named_by_record_keeps_holds_and_is_applied_once(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    station, steps = bench
    assert station.agent is not None
    cleared = _scan(station, steps, "CLEAR")
    tracking = cleared["parcel"]["tracking_number"]
    station.send(new_message("hold", tracking_number=tracking))
    kinds: list[str] = []
    station.agent.station.listeners.append(lambda event: kinds.append(event.kind))
    message = _outcome(record_id=cleared["record_id"], outcome="seized", reason_code="SEIZ-21")
    first, again = station.send(message), station.send(message)
    assert first is not None
    assert first == again
    assert first["status"] == "applied"
    record = _effect(station, message["message_id"])  # exactly one effect record
    assert record["downlink"]["tracking_number"] == tracking
    assert record["downlink"]["customs_outcome"]["refers_to"] == cleared["record_id"]
    assert set(kinds) == {"downlink"}  # not on the shelf: nothing for the operator
    assert tracking in station.agent.station.holds  # a seizure lifts no hold


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"tracking_number": "1ZNEVERSCANNED001", "outcome": "seized"}, "no parcel 1ZNEVERSCANNED001"),
        ({"tracking_number": "1ZX", "outcome": "confiscated"}, "outcome must be one of"),
        ({"outcome": "released"}, "names a record_id or a tracking_number"),
        ({"record_id": "not-a-record", "outcome": "released"}, "no verdict record not-a-record"),
        ({"tracking_number": "1ZX", "outcome": "seized", "reason_code": ""}, "reason_code"),
        ({"tracking_number": "1ZX", "outcome": "seized", "customs_reference": 7}, "customs_reference"),
    ],
)
def test_a_malformed_outcome_is_rejected_with_a_record_and_changes_nothing(
    bench: tuple[DemoStation, list[Step]], fields: dict[str, Any], why: str
) -> None:
    station, _ = bench
    assert station.agent is not None
    holds = dict(station.agent.station.holds)
    message = _outcome(**fields)
    ack = station.send(message)
    assert ack is not None
    assert ack["status"] == "rejected"
    assert why in ack["detail"]
    record = _effect(station, message["message_id"])
    assert record["downlink"]["status"] == "rejected"
    assert "customs_outcome" not in record["downlink"]
    validate(record)
    assert station.agent.station.holds == holds


def test_an_outcome_on_a_record_of_another_tracking_number_is_rejected(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    station, steps = bench
    cleared = _scan(station, steps, "CLEAR")
    ack = station.send(
        _outcome(record_id=cleared["record_id"], tracking_number="1ZOTHER0000000001", outcome="penalty")
    )
    assert ack is not None
    assert ack["status"] == "rejected"
    assert "not 1ZOTHER0000000001" in ack["detail"]


@pytest.mark.slow
def test_the_customs_cli_sends_an_outcome(
    bench: tuple[DemoStation, list[Step]], capsys: pytest.CaptureFixture[str]
) -> None:
    from prescreen.commands.main import main

    station, steps = bench
    cleared = _scan(station, steps, "CLEAR")
    common = ["--site", "site-01", "--device", "station-01", "--port", str(station.broker.port), "--json"]
    common += ["--key", str(station.workdir / "customs.key"), "--type", "outcome"]
    sent = ["--tracking", cleared["parcel"]["tracking_number"], "--outcome", "denied_entry"]
    sent += ["--reason-code", "ADCVD", "--customs-reference", "CBP-DEN-3"]
    assert main(["downlink", "send", *common, *sent]) == 0
    ack = json.loads(capsys.readouterr().out)
    record = _effect(station, ack["message_id"])
    assert record["downlink"]["customs_outcome"].pop("message")["customs_reference"] == "CBP-DEN-3"
    assert record["downlink"]["customs_outcome"] == {
        "outcome": "denied_entry",
        "reason_code": "ADCVD",
        "customs_reference": "CBP-DEN-3",
        "refers_to": cleared["record_id"],
    }
    assert main(["downlink", "send", *common, "--tracking", "1ZX", "--outcome", "seized"]) == 1
    assert "reason_code" in json.loads(capsys.readouterr().out)["detail"]


@pytest.mark.slow
def test_a_seizure_after_the_station_pruned_the_verdict_is_recorded_and_labelled(tmp_path: Path) -> None:
    """Seizures come weeks or months after the scan, after the 30-day retention pruned the verdict
    here; they were rejected ('no verdict record'), and the learning loop lost its positive labels."""
    orders, steps = generate(8, seed=11)
    station = DemoStation(tmp_path / "pruned", orders)
    try:
        assert station.agent is not None
        parcels = [s for s in steps if s.kind == "parcel" and decode(s.payload).tracking_number]
        scanned = _scan_with_order(station, parcels)
        station.drain()  # acked by the receiver, which keeps it
        later = datetime.now(timezone.utc) + timedelta(days=31)
        assert housekeep(station.agent.outbox, station.agent.config.outbox, now=later).pruned > 0
        assert station.agent.outbox.get(scanned["record_id"]) is None

        message = _outcome(record_id=scanned["record_id"], outcome="seized", customs_reference="CBP-LATE-9")
        ack = station.send(message)
        assert ack is not None
        assert ack["status"] == "applied", ack
        assert ack["parcel_state"] is None  # unknown here
        record = _effect(station, message["message_id"])
        assert record["downlink"]["customs_outcome"]["refers_to"] == scanned["record_id"]
        validate(record)
        by_tracking = _outcome(tracking_number=scanned["parcel"]["tracking_number"], outcome="seized")
        ack = station.send(by_tracking)  # the station cannot tell the record id: customs must
        assert ack is not None
        assert ack["status"] == "rejected"
        assert "name it by record_id" in ack["detail"]
        station.drain()
        assert station.receiver is not None
        stored = [json.loads(row["body"]) for row in station.receiver.store.query(Filters())]
        (row,) = [r for r in label_rows(stored) if r["record_id"] == scanned["record_id"]]
        assert (row["label"], row["outcome"], row["customs_reference"]) == (1, "seized", "CBP-LATE-9")
    finally:
        station.close()


def _scan_with_order(station: DemoStation, steps: list[Step]) -> dict[str, Any]:
    for step in steps:
        event, _ = station.run(step)
        if event.record is not None and event.record.get("order"):
            return event.record
    raise AssertionError("no parcel with an order in the sample")
