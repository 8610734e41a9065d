"""The seller scorecard on a fixture outbox whose counts are known by construction."""

from __future__ import annotations

import copy
import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from prescreen.commands.main import main
from prescreen.core.records import envelope
from prescreen.ops.config import StationConfig
from prescreen.packing.outbox import Outbox

NOW = datetime.now(timezone.utc)
STATION = StationConfig(device_id="dev-1", site_id="site-a")


def _reason(code: str, severity: str = "review", message: str = "") -> dict[str, str]:
    return {"code": code, "severity": severity, "message": message or code}


def _verdict(
    seller: str | None,
    verdict: str,
    reasons: list[dict[str, str]],
    *,
    hours_ago: float,
    declared: float = 0.5,
    measured: float = 0.5,
    supersedes: dict[str, Any] | None = None,
) -> Any:
    def build(seq: int) -> dict[str, Any]:
        record = envelope("verdict", seq, STATION)
        record["created_at"] = (
            (NOW - timedelta(hours=hours_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        record["parcel"] = {"tracking_number": f"T{seq:05d}", "measured_weight_kg": measured}
        record["order"] = (
            None
            if seller is None
            else {
                "seller": {"name": seller},
                "declared_weight_kg": declared,
                "items": [{"description": "parts", "hts_code": "8708300000"}],
            }
        )
        record["screening"] = {"verdict": verdict, "reasons": copy.deepcopy(reasons)}
        if supersedes:
            record["supersedes"] = supersedes
        return record

    return build


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    """Seller A: 10 parcels in the last day. 2 HOLD (weight off, declared 0.5, weighed 1.0),
    3 REVIEW (vague description), 5 CLEAR of which 1 had no weight (not the seller's doing).
    One of A's HOLDs was corrected and returned to the seller.
    Seller B: 4 CLEAR parcels; a fifth was first screened without its order (ORDER_UNAVAILABLE)
    and completed later: only the completed version counts.
    Seller C: 12 parcels 5 days ago all with a vague description, 12 in the last day clean.
    An 8-day-old parcel is outside the 7-day window. Customs sent feedback on A's record and on B."""
    outbox = Outbox(tmp_path / "outbox.db")
    weight = [_reason("WEIGHT_MISMATCH", "hold", "Declared 0.50 kg, scale says 1.00 kg.")]
    vague = [_reason("DQ_DESCRIPTION_VAGUE", message="Item 1: description 'parts' is too vague")]
    a_hold = outbox.append(_verdict("Seller A", "HOLD", weight, hours_ago=20, measured=1.0))
    outbox.append(_verdict("Seller A", "HOLD", weight, hours_ago=19, measured=1.0))
    for hour in (18, 17, 16):
        outbox.append(_verdict("Seller A", "REVIEW", vague, hours_ago=hour))
    for hour in (15, 14, 13, 12):
        outbox.append(_verdict("Seller A", "CLEAR", [], hours_ago=hour))
    outbox.append(_verdict("Seller A", "CLEAR", [_reason("NO_WEIGHT")], hours_ago=11))
    outbox.append(
        _verdict(
            "Seller A",
            "CLEAR",
            [],
            hours_ago=10,
            measured=1.0,
            declared=1.0,
            supersedes={
                "record_id": a_hold["record_id"],
                "reason": "correction",
                "fields": ["declared_weight_kg"],
            },
        )
    )
    outbox.append(
        lambda seq: {
            **envelope("outcome", seq, STATION),
            "outcome": {
                "refers_to": a_hold["record_id"],
                "outcome": "returned_to_seller",
                "tracking_number": "T1",
            },
        }
    )
    for hour in (9, 8, 7, 6):
        outbox.append(_verdict("Seller B", "CLEAR", [], hours_ago=hour))
    first = outbox.append(_verdict(None, "REVIEW", [_reason("ORDER_UNAVAILABLE")], hours_ago=5))
    outbox.append(
        _verdict(
            "Seller B",
            "CLEAR",
            [],
            hours_ago=4,
            supersedes={"record_id": first["record_id"], "reason": "order_arrived"},
        )
    )
    for _ in range(12):
        outbox.append(_verdict("Seller C", "REVIEW", vague, hours_ago=5 * 24))
        outbox.append(_verdict("Seller C", "CLEAR", [], hours_ago=3))
    outbox.append(_verdict("Seller A", "HOLD", weight, hours_ago=8 * 24))
    outbox.db.conn.executescript(
        "INSERT INTO feedback VALUES ('m1', '2026-11-20T00:00:00Z', "
        f"'{a_hold['record_id']}', NULL, 'declared weight corrected to 1.0 kg');"
        "INSERT INTO feedback VALUES ('m2', '2026-11-21T00:00:00Z', NULL, 'Seller B', 'thanks: clean data');"
    )
    outbox.close()
    return tmp_path / "outbox.db"


def _report(outbox_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["report", "sellers", "--outbox", str(outbox_path), "--since", "7d", *extra]) == 0
    return capsys.readouterr().out


def test_scorecard_figures_match_the_fixture(outbox_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sellers = {
        s["seller"]: s for s in json.loads(_report(outbox_path, capsys, "--format", "json"))["sellers"]
    }
    assert set(sellers) == {"Seller A", "Seller B", "Seller C"}
    a, b, c = sellers["Seller A"], sellers["Seller B"], sellers["Seller C"]
    assert a["parcels"] == 10  # the correction and the 8-day-old parcel are not parcels of the window
    assert (a["held"], a["held_pct"], a["review_pct"]) == (2, 20.0, 30.0)
    assert a["findings"]["WEIGHT_MISMATCH"] == {"parcels": 2, "pct": 20.0}
    assert a["findings"]["DQ_DESCRIPTION_VAGUE"] == {"parcels": 3, "pct": 30.0}
    assert a["findings"]["NO_WEIGHT"] == {"parcels": 1, "pct": 10.0}
    assert a["with_seller_finding_pct"] == 50.0  # NO_WEIGHT is the station's, not the seller's
    assert a["weight_mismatch_pct"] == 20.0
    assert a["mean_weight_delta_pct"] == 20.0  # two parcels 100 % off, eight exact
    assert a["weight_checked"] == 10
    assert a["corrected"] == 1
    assert a["outcomes"] == {"returned_to_seller": 1}
    assert a["feedback"] == ["declared weight corrected to 1.0 kg"]
    assert a["advice"]["DQ_DESCRIPTION_VAGUE"].startswith("Description 'parts' is too vague")
    assert (
        a["advice"]["WEIGHT_MISMATCH"]
        == "You declared 0.5 kg; the parcel weighed 1 kg: declare the packed weight."
    )
    assert (b["parcels"], b["held"], b["with_seller_finding_pct"]) == (5, 0, 0.0)
    assert b["feedback"] == ["thanks: clean data"]
    assert c["parcels"] == 24
    assert c["trend"] == "improving"  # 100 % with findings in the first half, 0 % in the second
    assert a["trend"] == "n/a"  # all of A's parcels are in the second half


def test_scorecard_as_table_csv_and_in_spanish(outbox_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _report(outbox_path, capsys)
    assert "Seller A" in table
    assert "customs feedback: declared weight corrected to 1.0 kg" in table
    rows = list(csv.DictReader(io.StringIO(_report(outbox_path, capsys, "--format", "csv"))))
    by_seller = {r["seller"]: r for r in rows}
    assert by_seller["Seller A"]["held_pct"] == "20.0"
    assert by_seller["Seller A"]["pct_DQ_DESCRIPTION_VAGUE"] == "30.0"
    assert by_seller["Seller C"]["trend"] == "improving"
    spanish = json.loads(_report(outbox_path, capsys, "--format", "json", "--language", "es"))
    advice = {s["seller"]: s["advice"] for s in spanish["sellers"]}
    assert advice["Seller A"]["DQ_DESCRIPTION_VAGUE"].startswith("La descripción 'parts' es demasiado vaga")


def test_a_missing_outbox_or_bad_window_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "sellers", "--outbox", str(tmp_path / "none.db")]) == 1
    assert "no outbox here" in capsys.readouterr().err
    Outbox(tmp_path / "o.db").close()
    assert main(["report", "sellers", "--outbox", str(tmp_path / "o.db"), "--since", "last tuesday"]) == 1
    assert "--since takes" in capsys.readouterr().err
