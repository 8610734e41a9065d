"""Answers to customs referrals (issue 17): an RFI names the data it wants and is answered with an
``rfi_response`` record; an RFS is answered with a ``screening`` record. Through the real broker,
a simulated station, its local API (token and Host rules) and the CLI, to the receiver's store,
where each answer is found with the parcel's other records by its tracking number."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prescreen.commands.main import main
from prescreen.core.records import validate
from prescreen.drivers.barcodes import decode
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.customs import new_message
from prescreen.sync.store import Filters


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoStation, list[Step]]]:
    orders, steps = generate(40, seed=17)
    station = DemoStation(tmp_path_factory.mktemp("referrals"), orders)
    try:
        yield station, [s for s in steps if s.kind == "parcel" and decode(s.payload).tracking_number]
    finally:
        station.close()


def _scanned(station: DemoStation, steps: list[Step]) -> str:
    event, _ = station.run(steps.pop(0))
    assert event.record is not None
    return str(event.record["parcel"]["tracking_number"])


def _post(station: DemoStation, route: str, body: Any, **headers: str) -> httpx.Response:
    assert station.agent is not None
    assert station.agent.http is not None
    sent = {**station.api_headers(), **headers}
    return httpx.post(station.agent.http.url + route, json=body, headers=sent, timeout=15)


def _kinds(station: DemoStation, kind: str) -> list[dict[str, Any]]:
    assert station.agent is not None
    return [r for r in station.agent.outbox.records() if r["kind"] == kind]


@pytest.mark.slow
def test_an_rfi_names_its_fields_and_is_answered_with_exactly_those(
    bench: tuple[DemoStation, list[Step]], caplog: pytest.LogCaptureFixture
) -> None:
    station, steps = bench
    tracking = _scanned(station, steps)
    message = new_message("rfi", tracking_number=tracking, fields=["invoice", "hts_code"])
    ack = station.send(message)
    assert ack is not None
    assert ack["status"] == "applied", ack
    assert "asks for hts_code, invoice" in ack["detail"]
    (effect,) = [
        r for r in _kinds(station, "downlink") if r["downlink"]["message_id"] == message["message_id"]
    ]
    assert effect["downlink"]["requested_fields"] == ["hts_code", "invoice"]
    validate(effect)

    before = len(_kinds(station, "rfi_response"))
    missing = _post(station, "/api/rfi", {"tracking_number": tracking, "fields": {"invoice": "INV-2291"}})
    assert missing.status_code == 400
    assert "missing: hts_code" in missing.json()["error"]
    unknown = {"tracking_number": tracking, "fields": {"invoice": "I", "hts_code": "1", "password": "x"}}
    assert "not RFI fields: password" in _post(station, "/api/rfi", unknown).json()["error"]
    nothing_open = {"tracking_number": "1ZNORFI0000000001", "fields": {"invoice": "I"}}
    assert _post(station, "/api/rfi", nothing_open).status_code == 404
    answer = {"tracking_number": tracking, "fields": {"invoice": "INV-2291", "hts_code": "8708301050"}}
    with caplog.at_level(logging.WARNING):
        assert _post(station, "/api/rfi", answer, **{"X-Prescreen-Token": "guess"}).status_code == 401
        assert _post(station, "/api/rfi", answer, Host="evil.example:80").status_code == 421
    refused = [r.getMessage() for r in caplog.records]
    assert "http post refused" in refused
    assert "http request refused: unknown Host" in refused
    assert len(_kinds(station, "rfi_response")) == before  # none of those committed anything

    response = _post(station, "/api/rfi", {**answer, "answered_by": "compliance"})
    assert response.status_code == 201, response.text
    record = response.json()["record"]
    validate(record)
    assert record["kind"] == "rfi_response"
    assert record["signature"]
    assert record["rfi_response"]["message_id"] == message["message_id"]
    assert record["rfi_response"]["fields"] == {"hts_code": "8708301050", "invoice": "INV-2291"}
    assert record["rfi_response"]["refers_to"] == effect["downlink"]["parcel_state"]["verdict_record_id"]
    assert station.agent is not None
    assert tracking in station.agent.station.holds  # customs decides; the answer lifts nothing


def test_a_screened_parcel_leaves_a_screening_record_tied_to_the_rfs(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    station, steps = bench
    tracking = _scanned(station, steps)
    message = new_message("rfs", tracking_number=tracking)
    assert (station.send(message) or {}).get("status") == "applied"
    bad = {"tracking_number": tracking, "method": "sniffing", "operator": "ana", "result": "cleared"}
    assert "method must be one of" in _post(station, "/api/screening", bad).json()["error"]
    body = {
        "tracking_number": tracking,
        "method": "x_ray",
        "operator": "badge-114",
        "result": "cleared",
        "screened_at": "2026-11-27T10:15:00Z",
    }
    response = _post(station, "/api/screening", body)
    assert response.status_code == 201, response.text
    record = response.json()["record"]
    validate(record)
    screened = record["screened"]
    assert (screened["method"], screened["operator"], screened["result"]) == ("x_ray", "badge-114", "cleared")
    assert screened["screened_at"] == "2026-11-27T10:15:00.000Z"
    assert screened["message_id"] == message["message_id"]
    assert screened["refers_to"] is not None


@pytest.mark.slow
def test_the_receiver_links_every_answer_to_its_parcel_and_the_cli_sends_them(
    bench: tuple[DemoStation, list[Step]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, steps = bench
    tracking = _scanned(station, steps)
    assert (station.send(new_message("rfi", tracking_number=tracking, fields=["description"])) or {}).get(
        "status"
    ) == "applied"
    assert (station.send(new_message("rfs", tracking_number=tracking)) or {}).get("status") == "applied"
    config = station.api_config(tmp_path / "agent.toml")
    answer = [
        "rfi",
        "answer",
        "--config",
        str(config),
        tracking,
        "--field",
        "description=brake pads for cars",
    ]
    assert main(answer) == 0
    assert f"RFI on {tracking} answered: description" in capsys.readouterr().out
    screened = ["rfs", "screened", "--config", str(config), tracking, "--method", "etd"]
    assert main([*screened, "--operator", "ana", "--result", "not_cleared"]) == 0
    assert "screened by etd: not_cleared" in capsys.readouterr().out
    assert main(["rfi", "answer", "--config", str(config), tracking, "--field", "invoice"]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err
    station.drain()
    assert station.receiver is not None
    assert station.receiver.store.stats().get("rejected", 0) == 0  # the schema knows both kinds
    kinds = [row["kind"] for row in station.receiver.store.query(Filters(tracking_number=tracking))]
    assert {"verdict", "downlink", "rfi_response", "screening"} <= set(kinds)


def test_a_malformed_rfi_is_acked_as_rejected_and_changes_nothing(
    bench: tuple[DemoStation, list[Step]], caplog: pytest.LogCaptureFixture
) -> None:
    station, steps = bench
    assert station.agent is not None
    tracking = _scanned(station, steps)
    holds = dict(station.agent.station.holds)
    with caplog.at_level(logging.INFO, logger="prescreen.downlink"):
        ack = station.send(new_message("rfi", tracking_number=tracking, fields=["passport_scan"]))
    assert ack is not None
    assert ack["status"] == "rejected"
    assert "fields must be a list of some of" in ack["detail"]
    assert station.agent.station.holds == holds
    assert any(
        r.getMessage() == "downlink message" and getattr(r, "status", None) == "rejected"
        for r in caplog.records
    )
