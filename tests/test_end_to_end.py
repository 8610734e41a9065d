"""The demo path end to end: pty devices, screening, outbox, real broker, receiver store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prescreen.core.records import validate
from prescreen.sim.demo import run_demo
from prescreen.sync.shadow import promotion_refusal


def stored_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT record_id FROM records")]


def learning_records(loop: dict[str, Any]) -> int:
    """Records the demo's learning loop commits: one downlink record per customs outcome, the second
    shift's verdicts and shelf confirmations, and the shadow delivery's and (if the shadow report
    supported it) the promotion's."""
    decided = sum(n for why, n in loop["outcomes"].items() if why != "seized")
    if not loop["trained"]:
        return int(decided)
    return int(decided + loop["parcels"] + loop["holds_on_shelf"] + 1 + ("promoted" in loop))


@pytest.mark.slow
def test_every_record_arrives_exactly_once_and_validates(tmp_path: Path) -> None:
    summary = run_demo(60, workdir=tmp_path)
    assert summary["parcels"] == 60
    holds = summary["verdicts"]["HOLD"]
    assert summary["holds_on_shelf"] == holds  # each HOLD confirmed by a shelf-label scan
    compliance = summary["compliance"]
    assert compliance["correction"]["verdict_before"] == "HOLD"
    assert compliance["late_hold"]["status"] == "applied"
    assert compliance["feedback"] == "applied"
    extra = 5  # the correction, its outcome, two downlink messages' records, the late hold's shelving
    # The learning loop: a downlink record per customs outcome, the second shift's verdicts and
    # shelf confirmations, and the records of the shadow delivery and the promotion.
    loop = summary["learning"]
    assert loop["trained"], loop
    assert loop["shadow"] == "applied"
    # customs examined cleared parcels at random too, and the shadow model raised some of them
    assert loop["outcomes"]["examined"] > 0
    assert loop["outcomes"]["seized"] > 0
    (report,) = loop["shadow_report"]
    assert report["shadow_raised"] > report["live_raised"] == 0
    assert (loop["refused"], loop.get("promoted")) == (
        promotion_refusal(report),
        None if loop["refused"] else "applied",
    )
    assert loop["used_by"] == ("risk-v2" if loop["refused"] else "risk-demo-outcomes")
    total = 60 + holds + extra + learning_records(loop)
    assert summary["committed"] == summary["acked"] == summary["received"] == total
    assert summary["exactly_once"], summary["delivery_problems"]
    assert sum(summary["verdicts"].values()) == 60
    assert all(summary["verdicts"][v] > 0 for v in ("CLEAR", "REVIEW", "HOLD"))
    # every filer export has demo parcels, and the demo's data gaps are refused, not written
    assert all(counts["rows"] > 0 for counts in summary["exports"].values())
    assert summary["exports"]["us-informal"]["refused"] > 0
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        bodies = [json.loads(r[0]) for r in conn.execute("SELECT body FROM records ORDER BY seq")]
    for body in bodies:
        validate(body)
    assert [b["seq"] for b in bodies] == list(range(1, total + 1))
    received = stored_ids(tmp_path / "receiver.db")
    assert sorted(received) == sorted(b["record_id"] for b in bodies)
    outcomes = [b for b in bodies if b["kind"] == "outcome" and b["outcome"]["outcome"] == "held_on_shelf"]
    held = {
        b["record_id"]
        for b in bodies
        if b["kind"] == "verdict" and b["screening"]["verdict"] == "HOLD" and "supersedes" not in b
    }
    assert compliance["late_hold"]["shelved"]  # the parcel customs held late, fetched back and shelved
    late = compliance["late_hold"]["parcel_state"]["verdict_record_id"]
    assert {o["outcome"]["refers_to"] for o in outcomes} == held | {late}
    assert {o["outcome"]["shelf"] for o in outcomes} == {"SHELF-A1"}
    # The held parcel's correction: a new version, linked to the old, both in the receiver's store.
    (fixed,) = [b for b in bodies if (b.get("supersedes") or {}).get("reason") == "correction"]
    assert fixed["supersedes"]["fields"] == ["declared_weight_kg"]
    assert fixed["supersedes"]["record_id"] in held
    assert fixed["order"]["declared_weight_kg"] == fixed["parcel"]["measured_weight_kg"]
    assert "WEIGHT_MISMATCH" not in {r["code"] for r in fixed["screening"]["reasons"]}
    assert {fixed["record_id"], fixed["supersedes"]["record_id"]} <= set(received)
    (closed,) = [
        b for b in bodies if b["kind"] == "outcome" and b["outcome"]["refers_to"] == fixed["record_id"]
    ]
    assert closed["outcome"]["outcome"] == compliance["correction"]["outcome"]
    # Customs' messages: each has a record of its effect; the late RFS reports the parcel's state.
    downlinks = {b["downlink"]["type"]: b["downlink"] for b in bodies if b["kind"] == "downlink"}
    assert downlinks["rfs"]["parcel_state"]["scanned"] is True
    assert downlinks["rfs"]["parcel_state"]["verdict"] == "CLEAR"
    assert downlinks["feedback"]["status"] == "applied"
    sellers = {s["seller"]: s for s in summary["sellers"]}
    assert sellers[compliance["correction"]["seller"]]["corrected"] == 1
    assert sellers[compliance["correction"]["seller"]]["feedback"]
    bodies = [b for b in bodies if b["kind"] == "verdict"]
    codes = {r["code"] for b in bodies for r in b["screening"]["reasons"]}
    assert {"PRECURSOR_CHEMICAL", "CARTON_COUNT_EXCEEDS_MANIFEST", "DQ_DESCRIPTION_VAGUE"} <= codes
    carton = [b for b in bodies if "carton" in b["parcel"]]
    assert len(carton) == 1
    assert carton[0]["parcel"]["carton"]["scanned_count"] == 4


@pytest.mark.slow
def test_cli_demo_json_200_parcels(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prescreen", "demo", "--parcels", "200", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert summary["parcels"] == 200
    records = 200 + summary["verdicts"]["HOLD"] + 5 + learning_records(summary["learning"])
    assert summary["received"] == summary["committed"] == records
    assert summary["exactly_once"], summary["delivery_problems"]
    assert set(summary["latency_ms"]) >= {"p50", "p99"}
    assert set(summary) >= {
        "parcels",
        "verdicts",
        "committed",
        "acked",
        "received",
        "duplicates",
        "latency_ms",
    }


@pytest.mark.slow
def test_demo_on_the_embedded_broker(tmp_path: Path) -> None:
    pytest.importorskip("amqtt")
    summary = run_demo(12, workdir=tmp_path, broker_kind="amqtt")
    assert summary["broker"] == "amqtt"
    assert summary["received"] == summary["committed"] >= 12
    assert summary["exactly_once"], summary["delivery_problems"]


def test_the_demo_page_moves_to_a_free_port_when_its_port_is_taken_at_start(tmp_path: Path) -> None:
    """The demo checks its documented port and then starts: another demo or a test run on the same
    host may take the port in between (seen with several suites on one machine); the demo then
    serves its page on a free port instead of failing."""
    import socket

    from prescreen.sim.demo_station import DemoStation
    from prescreen.sim.samples import generate

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        station = DemoStation(tmp_path, generate(3)[0], http_port=port)
        try:
            assert station.url.startswith("http://127.0.0.1:")
            assert f":{port}/" not in station.url
        finally:
            station.close()
