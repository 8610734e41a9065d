"""`Station` on its own: fake devices at the edge, a real outbox, real order files and real rules.

Until these, the station's logic (master cartons, late orders, holds and their shelf, corrections)
was reached only through the whole demo (ptys, broker, receiver, HTTP). Here a scan is handed to
:meth:`Station.handle` and the weight comes from a fake scale that returns what was put on its pan.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from order_fixtures import TRACKING, clean_order
from prescreen.core.errors import OutboxError
from prescreen.drivers.base import Scan
from prescreen.packing.events import StationEvent
from prescreen.packing.orders import ORDER_UNAVAILABLE
from prescreen.packing.station import Station
from prescreen.trade.compliance import correct
from station_fakes import FakeScale, LateWms, make_station, sscc, ups


def scan(station: Station, scale: FakeScale, code: str, kg: str | None = None) -> StationEvent:
    if kg is not None:
        scale.place(kg)
    return station.handle(Scan(code, time.monotonic()))


def codes(event: StationEvent) -> set[str]:
    assert event.record is not None, event
    return {r["code"] for r in event.record["screening"]["reasons"]}


def test_a_clean_parcel_is_cleared_and_committed_before_anyone_hears_it(tmp_path: Path) -> None:
    station, scale, heard = make_station(tmp_path, [clean_order()])
    event = scan(station, scale, TRACKING, "0.5")
    assert event.kind == "verdict"
    assert event.record is not None
    assert event.record["screening"]["verdict"] == "CLEAR"
    assert event.record["parcel"]["measured_weight_kg"] == 0.5
    assert heard == [(event, 1)]  # the listener heard it with the record already in the outbox
    assert station.shelf.waiting() == []


def test_a_hold_waits_for_the_shelf_label_and_its_scan_is_recorded_once(tmp_path: Path) -> None:
    station, scale, heard = make_station(tmp_path, [clean_order()])
    held = scan(station, scale, TRACKING, "1.9")  # declared 0.5 kg: over three times that is a HOLD
    assert held.record is not None
    assert held.record["screening"]["verdict"] == "HOLD"
    assert "WEIGHT_MISMATCH" in codes(held)
    assert station.shelf.waiting() == [held.record["record_id"]]
    shelf = scan(station, scale, "SHELF-A1")
    assert shelf.kind == "hold_confirmed"
    assert shelf.record is not None
    outcome = shelf.record["outcome"]
    assert (outcome["outcome"], outcome["refers_to"], outcome["shelf"]) == (
        "held_on_shelf",
        held.record["record_id"],
        "SHELF-A1",
    )
    assert station.shelf.waiting() == []
    again = scan(station, scale, "SHELF-A1")
    assert again.kind == "ignored"
    assert again.record is None
    assert [e.kind for e, _ in heard] == ["verdict", "hold_confirmed", "ignored"]
    assert len(station.outbox.records()) == 2


def test_a_parcel_on_the_customs_hold_list_is_held_with_the_reason(tmp_path: Path) -> None:
    station, scale, _ = make_station(tmp_path, [clean_order()])
    station.set_holds({TRACKING: "RFS 2026-118"})
    event = scan(station, scale, TRACKING, "0.5")
    assert event.record is not None
    assert event.record["screening"]["verdict"] == "HOLD"
    (finding,) = [r for r in event.record["screening"]["reasons"] if r["code"] == "WATCHLIST_HOLD"]
    assert "RFS 2026-118" in finding["message"]
    station.set_holds({})
    assert "WATCHLIST_HOLD" not in codes(scan(station, scale, TRACKING, "0.5"))


def test_a_master_carton_counts_its_parcels_and_holds_the_one_not_on_its_manifest(tmp_path: Path) -> None:
    carton, inside = sscc(1), [ups(1), ups(2), ups(3)]
    orders = [clean_order(t) for t in inside[:2]]  # the third parcel has no order and is on no manifest
    orders.append({"master_carton": {"sscc": carton, "manifest": inside[:2], "tare_kg": 0.4}})
    station, scale, _ = make_station(tmp_path, orders)
    opened = scan(station, scale, f"]C100{carton}")
    assert opened.kind == "carton_open"
    assert opened.record is None
    assert "scan the 2 parcels inside" in opened.message
    parcels = [scan(station, scale, t, "0.5") for t in inside]
    for event in parcels:
        assert event.record is not None
        assert event.record["parcel"]["master_carton_id"] == carton
    assert [e.record["screening"]["verdict"] for e in parcels if e.record] == ["CLEAR", "CLEAR", "HOLD"]
    assert "CARTON_UNMANIFESTED_PARCEL" in codes(parcels[2])
    closed = scan(station, scale, f"]C100{carton}", "1.9")  # 3 × 0.5 kg + 0.4 kg tare
    assert closed.record is not None
    assert closed.record["parcel"]["carton"]["scanned_count"] == 3
    assert "CARTON_COUNT_EXCEEDS_MANIFEST" in codes(closed)
    assert "CARTON_WEIGHT_MISMATCH" not in codes(closed)
    after = scan(station, scale, ups(4), "0.5")  # the carton is closed: the next parcel is on its own
    assert after.record is not None
    assert after.record["parcel"]["master_carton_id"] is None


def test_a_late_order_completes_the_record_once_it_arrives(tmp_path: Path) -> None:
    wms = LateWms({TRACKING: clean_order()})
    wms.late.add(TRACKING)
    station, scale, heard = make_station(tmp_path, wms)
    first = scan(station, scale, TRACKING, "0.5")
    assert first.record is not None
    assert first.record["screening"]["verdict"] == "REVIEW"
    assert ORDER_UNAVAILABLE in codes(first)
    assert station.complete_late_orders() == []  # nothing arrived yet
    wms.arrive(TRACKING)
    (update,) = station.complete_late_orders()
    assert update.kind == "verdict_update"
    assert update.record is not None
    assert update.record["screening"]["verdict"] == "CLEAR"
    assert update.record["supersedes"] == {"record_id": first.record["record_id"], "reason": "order_arrived"}
    assert update.record["parcel"]["measured_weight_kg"] == 0.5  # the weight taken at the bench
    assert heard[-1] == (update, 2)
    assert station.complete_late_orders() == []  # completed once


def test_a_correction_rescreens_the_parcel_and_commits_a_new_version(tmp_path: Path) -> None:
    station, scale, _ = make_station(tmp_path, [clean_order()])
    held = scan(station, scale, TRACKING, "1.9")
    assert held.record is not None
    assert held.record["screening"]["verdict"] == "HOLD"
    fixed = correct(station, TRACKING, {"declared_weight_kg": "1.9"}, by="compliance-7")
    assert fixed.record is not None
    assert fixed.record["screening"]["verdict"] == "CLEAR"
    assert fixed.record["supersedes"] == {
        "record_id": held.record["record_id"],
        "reason": "correction",
        "fields": ["declared_weight_kg"],
        "by": "compliance-7",
    }
    assert fixed.record["parcel"]["measured_weight_kg"] == 1.9
    assert [r["seq"] for r in station.outbox.records()] == [1, 2]


def test_a_verdict_that_cannot_be_committed_is_told_as_not_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk is at the edge of the world: the outbox's append fails as SQLite's would."""
    station, scale, heard = make_station(tmp_path, [clean_order()])

    def disk_full(*args: object, **kwargs: object) -> object:
        raise OutboxError("database or disk is full")

    monkeypatch.setattr(station.outbox, "append", disk_full)
    event = scan(station, scale, TRACKING, "0.5")
    assert event.kind == "not_recorded"
    assert event.record is None
    assert event.message.startswith("NOT RECORDED")
    assert heard[0][0] is event
    assert [r.getMessage() for r in caplog.records if r.name == "prescreen.station"] == [
        "verdict not recorded"
    ]


def test_a_closed_outbox_is_told_as_not_recorded_not_raised(tmp_path: Path) -> None:
    """The station stopping (its outbox closed) while a scan is handled: NOT RECORDED, one line."""
    station, scale, _ = make_station(tmp_path, [clean_order()])
    heard: list[StationEvent] = []
    station.listeners[:] = [heard.append]  # the fakes' listener reads the outbox, closed here
    station.outbox.close()
    event = scan(station, scale, TRACKING, "0.5")
    assert event.kind == "not_recorded"
    assert "closed database" in event.message
    assert heard == [event]
