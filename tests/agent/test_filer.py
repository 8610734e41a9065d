"""Filer findings at the station: each fires on what a filer would be rejected for, not on a
complete order; the press finding stays off the seller scorecard."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from order_fixtures import clean_order
from prescreen.drivers.barcodes import decode
from prescreen.ops.config import ScreeningConfig, StationConfig
from prescreen.packing.verdicts import verdict_record
from prescreen.risk import codes as C
from prescreen.risk.entry import EntrySettings, press_on_line
from prescreen.risk.rules import ParcelFacts
from prescreen.risk.screening import Screener
from prescreen.trade import scorecard

SETTINGS = EntrySettings(account_channels={"CNPOST-EPACKET": "postal"})
UPS = "1Z5R89390357567127"


def screen(order: dict[str, Any] | None, label: str = UPS) -> tuple[str, set[str], ParcelFacts, Any]:
    facts = ParcelFacts(barcode=decode(label), weight_kg=Decimal("0.5"), order=order)
    result = Screener(ScreeningConfig(), entry=SETTINGS).screen(facts)
    return result.verdict, {f.code for f in result.findings if f.code.startswith("FILER_")}, facts, result


def test_a_complete_order_raises_no_filer_finding() -> None:
    assert screen(clean_order())[:2] == ("CLEAR", set())


def _without(path: str) -> dict[str, Any]:
    order = clean_order()
    target: Any = order
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = None
    return order


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("importer_of_record", C.FILER_IMPORTER_MISSING.code),
        ("importer_of_record.id", C.FILER_IMPORTER_MISSING.code),
        ("items.0.manufacturer", C.FILER_MANUFACTURER_MISSING.code),
        ("items.0.manufacturer.address", C.FILER_MANUFACTURER_MISSING.code),  # no MID without an address
    ],
)
def test_missing_parties_are_found(path: str, code: str) -> None:
    verdict, codes, _, result = screen(_without(path))
    assert codes == {code}
    # recorded for the filer and the seller, but not a reason to send the parcel to REVIEW
    assert verdict == "CLEAR"
    assert {f.severity for f in result.findings if f.code == code} == {"info"}


def test_a_declared_mid_stands_for_the_manufacturer_address() -> None:
    order = _without("items.0.manufacturer.address")
    order["items"][0]["manufacturer"]["mid"] = "CNSHESOU88SHE"
    assert screen(order)[1] == set()


def test_a_postal_account_parcel_without_an_s10_id() -> None:
    order = clean_order("9400111899223334445561")
    order["carrier_account"] = "CNPOST-EPACKET"
    assert screen(order, "9400111899223334445561")[1] == {C.FILER_POSTAL_NO_S10.code}
    assert screen(order, "CP749118622CN")[1] == set()  # the S10 label it should have had
    order["carrier_account"] = "FWD-AIR-01"  # not a postal account: a domestic label is no error
    assert screen(order, "9400111899223334445561")[1] == set()


def test_cpsc_regulated_lines_need_a_certificate_reference() -> None:
    order = clean_order()
    order["items"][0].update(description="Children's wooden jigsaw puzzle", hts_code="9503006000")
    assert screen(order)[1] == {C.FILER_CPSC_CERTIFICATE_MISSING.code}
    order["items"][0]["cpsc_certificate"] = "CPC-2026-0001"
    assert screen(order)[1] == set()
    mug = clean_order()
    mug["items"][0].update(description="Ceramic mug", hts_code="6912004400", pga_flags=["CPSC"])
    assert screen(mug)[1] == {C.FILER_CPSC_CERTIFICATE_MISSING.code}  # declared by the seller


def test_a_press_needs_its_dea_452_id_whether_declared_or_found_by_the_rules() -> None:
    found = clean_order()
    found["items"][0].update(description="TDP-5 tablet press machine", hts_code="8479899000")
    verdict, codes, _, result = screen(found)
    assert "PILL_PRESS_EQUIPMENT" in {f.code for f in result.findings}  # the rule's hold
    assert codes == {C.FILER_DEA_452_MISSING.code}
    assert verdict == "HOLD"
    found["items"][0]["dea_452_transaction_id"] = "DEA452-2026-77"
    assert screen(found)[1] == set()
    declared = clean_order()
    declared["items"][0].update(description="Rotary machine", hts_code="8479899000", pga_flags=["DEA"])
    assert screen(declared)[1] == {C.FILER_DEA_452_MISSING.code}


def test_us_entry_findings_only_for_us_bound_parcels() -> None:
    order = _without("importer_of_record")
    order["consignee"]["address"]["country"] = "DE"
    assert screen(order)[1] == set()
    assert screen(None)[1] == set()  # no order: the rules report that, not the filer checks


def test_the_press_finding_never_reaches_the_seller_scorecard() -> None:
    press = clean_order()
    press["items"][0].update(description="TDP-5 tablet press machine", hts_code="8479899000")
    no_importer = _without("importer_of_record")
    records = []
    for seq, order in enumerate((press, no_importer), start=1):
        _, _, facts, result = screen(copy.deepcopy(order))
        records.append(verdict_record(seq, StationConfig(), facts, result, entry=SETTINGS))
    assert C.FILER_DEA_452_MISSING.code in {
        r["code"] for r in records[0]["screening"]["reasons"]
    }  # customs sees it
    now = datetime.now(timezone.utc)
    (seller,) = scorecard.scorecard(records, since=now - timedelta(hours=1), now=now + timedelta(minutes=1))
    shown = seller.as_json()
    assert C.FILER_DEA_452_MISSING.code not in shown["findings"]
    assert C.FILER_DEA_452_MISSING.code not in shown["advice"]
    assert C.FILER_IMPORTER_MISSING.code in shown["findings"]  # the seller's own gap is shown, with advice
    assert C.FILER_IMPORTER_MISSING.code in shown["advice"]


def test_the_dea_452_id_is_asked_for_the_press_line_only() -> None:
    order = clean_order()
    press = {**order["items"][0], "description": "TDP-5 tablet press machine", "hts_code": "8479899000"}
    order["items"].append(press)
    _, codes, _, result = screen(order)
    assert codes == {C.FILER_DEA_452_MISSING.code}
    (dea,) = [f for f in result.findings if f.code == C.FILER_DEA_452_MISSING.code]
    assert dea.message.startswith("Item 2:")
    assert press_on_line([("PILL_PRESS_EQUIPMENT", 2)], 2, press, 2)
    assert not press_on_line([("PILL_PRESS_EQUIPMENT", 2)], 1, order["items"][0], 2)
    # a finding about no line: the only line, or the machinery line of several
    assert press_on_line([("PILL_PRESS_EQUIPMENT", None)], 1, order["items"][0], 1)
    assert press_on_line([("PILL_PRESS_EQUIPMENT", None)], 2, press, 2)
    assert not press_on_line([("PILL_PRESS_EQUIPMENT", None)], 1, order["items"][0], 2)
    assert not press_on_line([("PRESS_TARIFF_LINE", 2)], 2, press, 2)  # a suspicion only
