"""The finding-code registry (risk/data/findings.toml via prescreen.risk.codes), read as data."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prescreen.drivers.base import Scan
from prescreen.risk import codes, strings
from prescreen.risk.findings import Code, Finding, item_of
from prescreen.sim.samples import generate
from station_fakes import make_station

# What the page's and the seller's templates may name: the parcel's figures and the item's fields.
FIGURES = {"declared": "0.5", "measured": "1.4", "value": "12", "currency": "USD"}
ITEM = {"description": "USB cable", "hts": "8544420000", "origin": "CN"}


def test_every_code_is_a_constant_of_its_own_name_and_every_constant_is_registered() -> None:
    constants = {name: value for name, value in vars(codes).items() if isinstance(value, Code)}
    assert len(codes.REGISTRY) >= 40
    assert {name: c.code for name, c in constants.items()} == {code: code for code in codes.REGISTRY}
    assert all(constants[code] is codes.REGISTRY[code] for code in codes.REGISTRY)


@pytest.mark.parametrize("code", sorted(codes.REGISTRY))
def test_every_code_has_the_operators_words_in_every_language(code: str) -> None:
    entry = codes.REGISTRY[code]
    assert entry.severity in ("info", "review", "hold")
    assert set(entry.operator) == set(strings.LANGUAGES)
    for text in entry.operator.values():
        assert text.strip()
        text.format(**FIGURES)  # names nothing the record does not give the page


@pytest.mark.parametrize("code", sorted(codes.REGISTRY))
def test_advice_for_exactly_the_sellers_findings_in_every_language(code: str) -> None:
    entry = codes.REGISTRY[code]
    if entry.customs_only:
        assert not entry.sellers_doing  # a risk signal is never the seller's to be told about
    if not entry.sellers_doing:
        assert entry.seller is None
        return
    assert entry.seller is not None
    assert set(entry.seller) == set(strings.LANGUAGES)
    for text in entry.seller.values():
        text.format(**FIGURES, **ITEM)


def test_the_scorecard_sets_are_the_registrys_flags() -> None:
    assert {"PRECURSOR_CHEMICAL", "WATCHLIST_HOLD", "MODEL_HIGH_RISK"} <= codes.CUSTOMS_ONLY
    assert codes.CUSTOMS_ONLY < codes.NOT_SELLERS
    assert {"NO_WEIGHT", "ORDER_UNAVAILABLE", "INTERNAL_ERROR"} == codes.NOT_SELLERS - codes.CUSTOMS_ONLY


def test_a_finding_carries_its_item_and_its_message_must_name_the_same_one() -> None:
    finding = codes.DQ_DESCRIPTION_VAGUE.found("Item 2: description 'parts' is too vague.", item=2)
    assert (finding.item, finding.severity) == (2, "review")
    assert item_of(finding.as_json()) == 2
    assert item_of(codes.NO_WEIGHT.found("The scale gave no stable weight.").as_json()) is None
    with pytest.raises(ValueError, match="does not name item 1"):
        Finding("DQ_VALUE_MISSING", "review", "Item 2: declared value must be above zero.", item=1)
    with pytest.raises(ValueError, match="does not name item 3"):
        codes.DQ_VALUE_MISSING.found("Declared value must be above zero.", item=3)
    assert (
        codes.WEIGHT_MISMATCH.found("Declared 0.5 kg, scale says 1.9 kg.", severity="hold").severity == "hold"
    )


def test_the_sample_parcels_raise_only_registered_codes_with_the_registrys_severities(tmp_path: Path) -> None:
    """The demo's 100 sample parcels through a station with fake devices: what the rules, the model
    and the filer checks really emit, not what their source text happens to contain."""
    orders, steps = generate(100, seed=7)
    station, scale, heard = make_station(tmp_path, orders, weight_timeout_s=0.02)
    for step in steps:
        if step.weight_kg is not None:
            scale.place(str(step.weight_kg))
        station.handle(Scan(step.aim + step.payload, time.monotonic()))
    reasons = [r for event, _ in heard if event.record for r in event.record["screening"]["reasons"]]
    emitted = {r["code"] for r in reasons}
    assert emitted <= set(codes.REGISTRY)
    assert len(emitted) >= 15  # the samples show much of what the station can find
    for reason in reasons:
        registered = codes.REGISTRY[reason["code"]].severity
        assert reason["severity"] == registered or reason["code"] in ("WEIGHT_MISMATCH", "ORDER_NOT_FOUND")
        about = item_of(reason)
        assert about is None or reason["message"].startswith(f"Item {about}")
