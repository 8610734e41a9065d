"""Each rule fires on the case it is for, and not on a clean parcel."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from order_fixtures import clean_order
from prescreen.drivers.barcodes import decode
from prescreen.ops.config import ScreeningConfig
from prescreen.risk.rules import CartonFacts, ParcelFacts
from prescreen.risk.screening import Screener

CLEAN = clean_order()


def screen(order: dict[str, Any] | None, weight: str | None = "0.5", **facts: Any) -> tuple[str, set[str]]:
    result = Screener(ScreeningConfig()).screen(
        ParcelFacts(
            barcode=decode("1Z5R89390357567127"),
            weight_kg=None if weight is None else Decimal(weight),
            order=order,
            **facts,
        )
    )
    return result.verdict, {f.code for f in result.findings}


def changed(path: str, value: Any) -> dict[str, Any]:
    order = copy.deepcopy(CLEAN)
    target = order
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = value
    return order


def test_clean_parcel_is_clear() -> None:
    assert screen(CLEAN) == ("CLEAR", set())


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        ("items.0.description", "Gift", "DQ_DESCRIPTION_VAGUE"),
        ("items.0.description", "misc parts", "DQ_DESCRIPTION_VAGUE"),
        ("items.0.description", "XXX", "DQ_DESCRIPTION_VAGUE"),
        ("items.0.description", "1004", "DQ_DESCRIPTION_VAGUE"),
        ("items.0.description", "", "DQ_DESCRIPTION_MISSING"),
        ("items.0.hts_code", "", "DQ_TARIFF_MISSING"),
        ("items.0.hts_code", "85183", "DQ_TARIFF_MALFORMED"),
        ("items.0.hts_code", "98010010", "DQ_TARIFF_CHAPTER_INVALID"),
        ("items.0.unit_value", 0, "DQ_VALUE_MISSING"),
        ("items.0.origin_country", "China", "DQ_ORIGIN_UNKNOWN"),
        ("currency", "RMB", "DQ_CURRENCY_UNKNOWN"),
        ("consignee", None, "DQ_CONSIGNEE_MISSING"),
        ("seller.address.line1", "", "DQ_SELLER_MISSING"),
        ("items", [], "DQ_NO_ITEMS"),
        ("items.0.description", "Cotton t-shirt", "TARIFF_DESCRIPTION_MISMATCH"),
        ("declared_weight_kg", 0.3, "WEIGHT_MISMATCH"),
        ("items.0.unit_value", 0.5, "VALUE_PER_KG_LOW"),
    ],
)
def test_review_findings(path: str, value: Any, code: str) -> None:
    verdict, codes = screen(changed(path, value))
    assert code in codes
    assert verdict == "REVIEW"


def test_six_digit_code_is_recorded_but_not_reviewed() -> None:
    assert screen(changed("items.0.hts_code", "851830")) == ("CLEAR", {"DQ_TARIFF_NOT_ENTRY_GRADE"})


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("4-Piperidone hydrochloride powder", "PRECURSOR_CHEMICAL"),
        ("4 piperidone HCl", "PRECURSOR_CHEMICAL"),
        ("chemical intermediate CAS 79099-07-3", "PRECURSOR_CHEMICAL"),
        ("NPP 99%", "PRECURSOR_CHEMICAL"),
        ("1-Boc-4-piperidinone", "PRECURSOR_CHEMICAL"),
        ("Propionyl chloride 500ml", "PRECURSOR_CHEMICAL"),
        ("TDP-5 tablet press", "PILL_PRESS_EQUIPMENT"),
        ("candy press mold", "PILL_PRESS_EQUIPMENT"),
        ("Punch and die set M30", "PILL_PRESS_EQUIPMENT"),
    ],
)
def test_hold_findings(description: str, code: str) -> None:
    verdict, codes = screen(changed("items.0.description", description))
    assert code in codes
    assert verdict == "HOLD"


def test_words_that_merely_contain_a_short_term_do_not_hit() -> None:
    _, codes = screen(changed("items.0.description", "snapper fishing lure"))
    assert "PRECURSOR_CHEMICAL" not in codes


def test_weight_three_times_declared_holds() -> None:
    assert screen(CLEAN, weight="1.6") == ("HOLD", {"WEIGHT_MISMATCH"})


def test_no_order_and_no_weight() -> None:
    verdict, codes = screen(None, weight=None, order_problem="ORDER_UNAVAILABLE")
    assert verdict == "REVIEW"
    assert codes == {"NO_WEIGHT", "ORDER_UNAVAILABLE"}


def test_watchlist_holds() -> None:
    assert screen(CLEAN, watchlisted="RFI 12") == ("HOLD", {"WATCHLIST_HOLD"})


def test_split_shipment() -> None:
    assert screen(CLEAN, consignee_recent=3) == ("REVIEW", {"SPLIT_SHIPMENT"})


def test_master_carton_with_an_extra_parcel_and_wrong_weight() -> None:
    carton = CartonFacts(
        "106141411234567897", frozenset({"A", "B"}), ("A", "B", "C"), Decimal("1.0"), tare_kg=0.4
    )
    verdict, codes = screen(None, weight="2.5", carton=carton)
    assert verdict == "HOLD"
    assert codes == {"CARTON_COUNT_EXCEEDS_MANIFEST", "CARTON_WEIGHT_MISMATCH"}


def test_parcel_inside_a_carton_without_manifest_entry_or_order_holds() -> None:
    verdict, codes = screen(None, inside_carton="106141411234567897", inside_manifest=False)
    assert verdict == "HOLD"
    assert codes == {"ORDER_NOT_FOUND", "CARTON_UNMANIFESTED_PARCEL"}
