"""Barcode meaning against the verified vectors of shared/docs/protocols.md §2-4."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prescreen.drivers.barcodes import decode

VALID = {
    "ups": ["1Z5R89390357567127", "1Z879E930346834440", "1Z410E7W0392751591", "1Z8V92A70367203024"],
    "usps": [
        "9400111201080805483016",
        "9361289878700317633795",
        "9405803699300124287899",
        "9505511069605048600624",
        "92748931507708513018050063",
        "03071790000523483741",
        "71123456789123456787",
    ],
    "fedex": [
        "986578788855",
        "477179081230",
        "799531274483",
        "790535312317",
        "974367662710",
        "041441760228964",
        "568283610012000",
        "568283610012734",
        "9611020987654312345672",
        "61299998820821171811",
    ],
    "dhl": ["3318810025", "8487135506", "1099255990", "3821724944", "3318810036", "73891051146"],
    "upu": ["RB123456785GB", "RB123456785US", "RR473124829GB", "EE123456785US"],
}
INVALID = [
    "1Z5R89390357567128",
    "9400111201080805483017",
    "996578788855",
    "568283610012732",
    "9611020987654312345671",
    "3318810010",
    "3318810034",
    "RB123456786US",
    "RR473124820GB",
]


@pytest.mark.parametrize(("carrier", "number"), [(c, n) for c, ns in VALID.items() for n in ns])
def test_valid_tracking_numbers(carrier: str, number: str) -> None:
    barcode = decode(number)
    assert (barcode.carrier, barcode.tracking_number, barcode.check_ok) == (carrier, number, True)
    assert barcode.reason is None


@pytest.mark.parametrize("number", INVALID)
def test_failed_check_is_kept_raw_with_a_reason(number: str) -> None:
    barcode = decode(number)
    assert not barcode.check_ok
    assert barcode.reason == "CHECK_DIGIT_FAILED"
    assert barcode.raw == number


def test_twenty_digits_that_fail_usps_may_be_fedex_smartpost() -> None:
    """A bare 20-digit number can satisfy one carrier's check and not another's (see protocols.md
    §4 caveat): it must never be accepted as the carrier whose check it fails."""
    barcode = decode("03071790000523483742")
    assert barcode.carrier != "usps"
    assert barcode.carrier == "fedex"
    assert barcode.check_ok


@pytest.mark.parametrize(
    ("scan", "tracking", "zip_code"),
    [
        ("420221539101026837331000039521", "9101026837331000039521", "22153"),
        ("4201002334249200190132607600833457", "9200190132607600833457", "100233424"),
        ("]C142022153\x1d9101026837331000039521", "9101026837331000039521", "22153"),
    ],
)
def test_usps_impb_routing_prefix_is_stripped(scan: str, tracking: str, zip_code: str) -> None:
    barcode = decode(scan)
    assert (barcode.carrier, barcode.tracking_number, barcode.check_ok) == ("usps", tracking, True)
    assert barcode.gs1 == {"420": zip_code}


def test_gs1_128_parcel_label() -> None:
    barcode = decode("]C100106141411234567897330200125042010001\x1d403ROUTE1")
    assert barcode.symbology == "gs1-code128"
    assert barcode.carrier == "gs1"
    assert barcode.sscc == "106141411234567897"
    assert barcode.check_ok
    assert barcode.gs1 == {"00": "106141411234567897", "3302": "001250", "420": "10001", "403": "ROUTE1"}


def test_gs1_with_421_country_postal_code_and_weight() -> None:
    barcode = decode("]C1421840100013\x1d3103001250")
    assert barcode.gs1 == {"421": "840100013", "3103": "001250"}


def test_bad_sscc_check_digit() -> None:
    barcode = decode("]C100106141411234567898")
    assert barcode.sscc == "106141411234567898"
    assert not barcode.check_ok
    assert barcode.reason == "CHECK_DIGIT_FAILED"


def test_aim_prefix_on_a_carrier_label() -> None:
    barcode = decode("]C01Z5R89390357567127")
    assert (barcode.symbology, barcode.carrier, barcode.check_ok) == ("code128", "ups", True)


def test_product_barcode_is_not_a_shipping_label() -> None:
    barcode = decode("]E05901234123457")
    assert barcode.symbology == "ean-upc"
    assert barcode.reason == "NOT_A_SHIPPING_LABEL"
    assert barcode.tracking_number is None


def test_unknown_barcode() -> None:
    barcode = decode("HELLO-WORLD")
    assert (barcode.carrier, barcode.reason, barcode.check_ok) == ("unknown", "UNKNOWN_BARCODE", False)


@given(st.text(max_size=60))
def test_any_text_decodes_without_raising(text: str) -> None:
    barcode = decode(text)
    assert barcode.check_ok or barcode.reason is not None
