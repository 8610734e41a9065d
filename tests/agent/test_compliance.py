"""Corrections and outcomes through the running agent's API and CLI, to the real receiver."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prescreen.commands.main import main
from prescreen.core.records import SCHEMA_ID, SCHEMA_V1
from prescreen.packing.events import StationEvent
from prescreen.packing.outcomes import OUTCOMES
from prescreen.risk.entry import EntrySettings, complete_order
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.store import Filters
from prescreen.trade.compliance import ComplianceApi, ComplianceError, corrected_order, kept_parcel_entry
from prescreen.web.server import TOKEN_HEADER, LocalServer


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoStation, list[Step]]]:
    orders, steps = generate(60, seed=7)
    station = DemoStation(tmp_path_factory.mktemp("compliance"), orders)
    try:
        yield station, [s for s in steps if s.kind == "parcel"]
    finally:
        station.close()


def _scan_until(station: DemoStation, steps: list[Step], want: Any) -> dict[str, Any]:
    while steps:
        event, _ = station.run(steps.pop(0))
        if event.record is not None and want(event.record):
            return event.record
    raise AssertionError("no such parcel in the sample")


def _codes(record: dict[str, Any]) -> set[str]:
    return {r["code"] for r in record["screening"]["reasons"]}


def _post(station: DemoStation, route: str, body: Any) -> httpx.Response:
    assert station.agent is not None
    assert station.agent.http is not None
    return httpx.post(station.agent.http.url + route, json=body, headers=station.api_headers(), timeout=15)


@pytest.mark.slow
def test_a_correction_is_rescreened_sent_as_a_new_version_and_both_are_stored(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    station, steps = bench
    vague = _scan_until(station, steps, lambda r: "DQ_DESCRIPTION_VAGUE" in _codes(r) and r["order"])
    response = _post(
        station,
        "/api/correct",
        {
            "record": vague["record_id"],
            "changes": {"description": "Brake pads for cars", "hts_code": "8708301050"},
            "by": "j.doe",
        },
    )
    assert response.status_code == 201, response.text
    fixed = response.json()["record"]
    assert fixed["supersedes"] == {
        "record_id": vague["record_id"],
        "reason": "correction",
        "fields": ["description", "hts_code"],
        "by": "j.doe",
    }
    assert fixed["order"]["items"][0]["description"] == "Brake pads for cars"
    assert "DQ_DESCRIPTION_VAGUE" not in _codes(fixed)
    assert fixed["parcel"]["tracking_number"] == vague["parcel"]["tracking_number"]
    assert fixed["seq"] > vague["seq"]
    station.drain()
    stored = station.receiver.store.query(Filters(tracking_number=vague["parcel"]["tracking_number"]))
    assert {row["record_id"] for row in stored} >= {vague["record_id"], fixed["record_id"]}


@pytest.mark.slow
@pytest.mark.parametrize("outcome", [o for o in OUTCOMES if o != "held_on_shelf"])
def test_each_outcome_is_a_record_tied_to_the_held_parcel(
    bench: tuple[DemoStation, list[Step]], outcome: str
) -> None:
    station, steps = bench
    assert station.agent is not None
    held = next(
        (
            r
            for r in station.agent.outbox.records()
            if r["kind"] == "verdict" and r["screening"]["verdict"] == "HOLD"
        ),
        None,
    ) or _scan_until(station, steps, lambda r: r["screening"]["verdict"] == "HOLD")
    body = {
        "record": held["parcel"]["tracking_number"] or held["record_id"],
        "outcome": outcome,
        "decided_by": "customs" if outcome == "handed_to_carrier" else "compliance",
        "customs_reference": "CBP-2026-000123" if outcome == "handed_to_carrier" else None,
        "note": f"test {outcome}",
    }
    response = _post(station, "/api/outcome", body)
    assert response.status_code == 201, response.text
    record = response.json()["record"]
    assert record["kind"] == "outcome"
    assert record["outcome"]["outcome"] == outcome
    assert record["outcome"]["refers_to"] in {r["record_id"] for r in station.agent.outbox.records()}
    assert record["signature"]["key_id"] == station.agent.key.key_id
    station.drain()
    assert station.agent.outbox.get(record["record_id"]) is not None
    assert station.receiver.count() == len(station.agent.outbox.records())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("route", "body", "status", "words"),
    [
        (
            "/api/correct",
            {"record": "1ZNOSUCH000000000", "changes": {"description": "x"}},
            404,
            "no verdict record",
        ),
        ("/api/correct", {"record": "LATEST", "changes": {"colour": "red"}}, 400, "cannot be corrected"),
        ("/api/correct", {"record": "LATEST", "changes": {"unit_value": "cheap"}}, 400, "must be a number"),
        ("/api/correct", {"record": "LATEST", "changes": {}}, 400, "no changes"),
        ("/api/correct", [1, 2], 400, "JSON object"),
        ("/api/outcome", {"record": "LATEST", "outcome": "vanished"}, 400, "outcome must be one of"),
        ("/api/outcome", {"record": "LATEST", "outcome": "handed_to_carrier"}, 400, "customs reference"),
    ],
)
def test_bad_requests_get_a_clear_answer_and_record_nothing(
    bench: tuple[DemoStation, list[Step]], route: str, body: Any, status: int, words: str
) -> None:
    station, steps = bench
    assert station.agent is not None
    if isinstance(body, dict) and body.get("record") == "LATEST":
        latest = _scan_until(station, steps, lambda r: r["order"] is not None)
        body = {**body, "record": latest["record_id"]}
    before = len(station.agent.outbox.records())
    response = _post(station, route, body)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert len(station.agent.outbox.records()) == before


@pytest.mark.slow
def test_correction_and_outcome_commands_talk_to_the_running_agent(
    bench: tuple[DemoStation, list[Step]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, steps = bench
    assert station.agent is not None
    assert station.agent.http is not None
    record = _scan_until(station, steps, lambda r: r["order"] is not None and r["parcel"]["tracking_number"])
    config = station.api_config(tmp_path / "agent.toml")  # the CLI reads the agent's 0600 token file
    tracking = record["parcel"]["tracking_number"]
    assert main(["correct", "--config", str(config), tracking, "--set", "origin_country=VN"]) == 0
    assert f"corrected: {tracking} is now" in capsys.readouterr().out
    assert main(["outcome", "--config", str(config), tracking, "returned_to_seller", "--json"]) == 0
    assert '"returned_to_seller"' in capsys.readouterr().out
    assert main(["correct", "--config", str(config), tracking, "--set", "nonsense"]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err


def test_corrected_order_touches_only_the_named_fields() -> None:
    order = {
        "items": [{"description": "parts", "hts_code": "9999", "unit_value": 1.0, "quantity": 1.0}],
        "seller": {"name": "A", "address": {"city": "X"}, "id": None},
        "currency": "USD",
    }
    fixed = corrected_order(
        order, {"seller_name": "B Ltd", "consignee_city": "Austin", "unit_value": "12.50"}
    )
    assert fixed["seller"]["name"] == "B Ltd"
    assert fixed["seller"]["address"]["city"] == "X"
    assert fixed["consignee"]["address"]["city"] == "Austin"
    assert fixed["items"][0]["unit_value"] == 12.5
    assert fixed["items"][0]["description"] == "parts"
    assert order["seller"]["name"] == "A"  # the stored record's order is not changed
    with pytest.raises(ComplianceError, match="no line 2"):
        corrected_order(order, {"description": "x"}, line=2)


def test_the_filer_gaps_can_be_corrected_and_the_mid_follows() -> None:
    order = {
        "items": [{"description": "TDP-5 tablet press", "hts_code": "8479899000", "origin_country": "CN"}],
        "currency": "USD",
    }
    fixed = complete_order(
        corrected_order(
            order,
            {
                "importer_of_record_name": "Demo Imports LLC",
                "importer_of_record_id": "98-7654321",
                "importer_of_record_id_type": "ein",
                "manufacturer_name": "Acme Tools",
                "manufacturer_line1": "5 Rd",
                "manufacturer_city": "Ningbo",
                "dea_452_transaction_id": "DEA452-77",
            },
        ),
        EntrySettings(),
    )
    assert fixed["importer_of_record"] == {
        "name": "Demo Imports LLC",
        "id": "98-7654321",
        "id_type": "ein",
        "address": None,
    }
    assert fixed["items"][0]["manufacturer"]["mid"] == "CNACMTOO5NIN"
    assert fixed["items"][0]["dea_452_transaction_id"] == "DEA452-77"
    with pytest.raises(ComplianceError, match="cannot be corrected"):
        corrected_order(order, {"importer_of_record_eori": "x"})


def test_a_correction_keeps_the_network_of_a_v2_record_and_decides_a_v1_records_again() -> None:
    v2 = {"schema": SCHEMA_ID, "parcel": {"channel": "cargo", "master_bill": "176-12345675"}}
    assert kept_parcel_entry(v2) == v2["parcel"]
    v1 = {"schema": SCHEMA_V1, "parcel": {"channel": "postal", "carrier": "usps"}}  # v1: by the label
    assert kept_parcel_entry(v1) is None


@contextlib.contextmanager
def _api_with_timeout(station: DemoStation, timeout_s: float) -> Iterator[str]:
    """The agent's compliance routes behind a real local HTTP server, with a short answer time."""
    assert station.agent is not None
    server = LocalServer(
        "127.0.0.1", 0, {}, ComplianceApi(station.agent.station, timeout_s).post_routes(), token="t0k"
    ).start()
    try:
        yield server.url
    finally:
        server.stop()


def _side_event() -> StationEvent:
    """An event of a task of ours: a side event, so the bench does not take it for a scan's."""
    return StationEvent("downlink", "")


def _outcomes_of(station: DemoStation, record_id: str) -> list[dict[str, Any]]:
    assert station.agent is not None
    station.agent.station.submit(_side_event).result(10)  # its queue is done
    return [
        r
        for r in station.agent.outbox.records()
        if r["kind"] == "outcome" and r["outcome"]["refers_to"] == record_id
    ]


def _scanned(bench: tuple[DemoStation, list[Step]]) -> tuple[DemoStation, dict[str, Any]]:
    """The bench's station and a parcel it just screened with its order."""
    station, steps = bench
    assert station.agent is not None
    return station, _scan_until(station, steps, lambda r: r["order"] is not None)


def _post_outcome(url: str, record_id: str) -> httpx.Response:
    body = {"record": record_id, "outcome": "returned_to_seller"}
    return httpx.post(url + "/api/outcome", json=body, headers={TOKEN_HEADER: "t0k"}, timeout=15)


def test_a_task_the_station_did_not_take_in_time_is_withdrawn_so_503_means_nothing_recorded(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    """It used to stay queued after the 503 'not recorded' and commit later: a retry made two."""
    station, record = _scanned(bench)
    busy = threading.Event()
    station.agent.station.submit(lambda: (busy.wait(10), _side_event())[1])  # a long task
    try:
        with _api_with_timeout(station, 0.3) as url:
            response = _post_outcome(url, record["record_id"])
    finally:
        busy.set()
    assert response.status_code == 503
    assert _outcomes_of(station, record["record_id"]) == []  # it did not run once the station was free
    assert "nothing was committed" in response.json()["error"]


@pytest.mark.slow
def test_a_task_running_at_the_timeout_is_answered_pending_not_failed(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    station, record = _scanned(bench)
    _outcomes_of(station, record["record_id"])  # the station is between turns, done with the scan
    # the station takes the task, which then waits for the outbox past the answer time
    with _api_with_timeout(station, 1.0) as url, station.agent.outbox.transaction():
        response = _post_outcome(url, record["record_id"])
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert "do not send it again" in response.json()["detail"]
    assert len(_outcomes_of(station, record["record_id"])) == 1  # committed once the outbox was free
